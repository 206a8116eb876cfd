"""Gold-standard images: an expert's answers, entered once, for quality control of readers.

Revision ID: 0005_gold_standard
Revises: 0004_image_patient
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_gold_standard'
down_revision = '0004_image_patient'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gold_standard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('diagnosis', sa.String(length=120), nullable=True),
    sa.Column('entered_by', sa.Integer(), nullable=True),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_gold_standard_image_id_image'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entered_by'], ['reader.id'], name=op.f('fk_gold_standard_entered_by_reader'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gold_standard')),
    sa.UniqueConstraint('image_id', name=op.f('uq_gold_standard_image_id'))
    )


def downgrade() -> None:
    op.drop_table('gold_standard')
