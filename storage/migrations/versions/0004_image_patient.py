"""Image patient: a keyed-hash pseudonym linking one patient's photos (never a name or an ID),
so that a patient's photos stay together when photos are split for training.

Revision ID: 0004_image_patient
Revises: 0003_audit_chain
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_image_patient'
down_revision = '0003_audit_chain'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('image') as batch:
        batch.add_column(sa.Column('patient', sa.String(length=40), nullable=True))
    op.create_index('ix_image_patient', 'image', ['patient'])


def downgrade() -> None:
    op.drop_index('ix_image_patient', table_name='image')
    with op.batch_alter_table('image') as batch:
        batch.drop_column('patient')
