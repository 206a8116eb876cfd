"""The project's reading order: assignment order, or where the model is least certain first (issue 19.8).

Revision ID: 0009_reading_order
Revises: 0008_row_security
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_reading_order'
down_revision = '0008_row_security'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('project') as batch:
        batch.add_column(sa.Column('reading_order', sa.String(length=24), nullable=False, server_default='default'))


def downgrade() -> None:
    with op.batch_alter_table('project') as batch:
        batch.drop_column('reading_order')
