"""Blind repeat reads: a reader's first answer kept when the read is reopened to be read again.

Revision ID: 0006_repeat_read
Revises: 0005_gold_standard
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_repeat_read'
down_revision = '0005_gold_standard'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('repeat_read',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('read_id', sa.Integer(), nullable=False),
    sa.Column('first_answer', sa.JSON(), nullable=False),
    sa.Column('reopened_by', sa.Integer(), nullable=True),
    sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['read_id'], ['read.id'], name=op.f('fk_repeat_read_read_id_read'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reopened_by'], ['reader.id'], name=op.f('fk_repeat_read_reopened_by_reader'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repeat_read')),
    sa.UniqueConstraint('read_id', name=op.f('uq_repeat_read_read_id'))
    )


def downgrade() -> None:
    op.drop_table('repeat_read')
