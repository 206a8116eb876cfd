"""Readers' credential kind ("pin" or "passphrase"), so lists name it rightly; the hash cannot tell.

Admins' credentials are passphrases already; the others' kind is noted at their next sign-in.

Revision ID: 0012_credential_kind
Revises: 0011_work_claims
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_credential_kind'
down_revision = '0011_work_claims'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reader') as batch:
        batch.add_column(sa.Column('credential_kind', sa.String(length=12), nullable=True))
    op.execute("UPDATE reader SET credential_kind = 'passphrase' WHERE role = 'admin' AND pin_hash IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('reader') as batch:
        batch.drop_column('credential_kind')
