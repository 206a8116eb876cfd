"""Claims on images' model work, so workstations sharing a project pre-segment each image once.

Revision ID: 0011_work_claims
Revises: 0010_long_model_versions
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_work_claims'
down_revision = '0010_long_model_versions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('work_claim',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_work_claim_image_id_image'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'kind', name=op.f('pk_work_claim'))
    )


def downgrade() -> None:
    op.drop_table('work_claim')
