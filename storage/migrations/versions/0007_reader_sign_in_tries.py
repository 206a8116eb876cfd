"""Readers' wrong sign-in tries and the time the next try is allowed (issue 16).

Revision ID: 0007_sign_in_tries
Revises: 0006_repeat_read
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_sign_in_tries'
down_revision = '0006_repeat_read'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reader') as batch:
        batch.add_column(sa.Column('failed_sign_ins', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('retry_after', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reader') as batch:
        batch.drop_column('retry_after')
        batch.drop_column('failed_sign_ins')
