"""Adjudication: a reviewer's final answer per image and finding, apart from the readers' rows;
and the project's label source (consensus, or adjudicated answers where they exist).

Revision ID: 0002_adjudication
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_adjudication'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('adjudication',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=True),
    sa.Column('present', sa.Boolean(), nullable=True),
    sa.Column('regions', sa.Integer(), nullable=False),
    sa.Column('diagnosis_class_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_adjudication_image_id_image'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['finding_id'], ['finding.id'], name=op.f('fk_adjudication_finding_id_finding'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['diagnosis_class_id'], ['diagnosis_class.id'], name=op.f('fk_adjudication_diagnosis_class_id_diagnosis_class'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reader.id'], name=op.f('fk_adjudication_reviewer_id_reader'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adjudication'))
    )
    op.create_index('ix_adjudication_image_finding', 'adjudication', ['image_id', 'finding_id', 'id'])
    with op.batch_alter_table('project') as batch:
        batch.add_column(sa.Column('label_source', sa.String(length=24), nullable=False, server_default='consensus'))


def downgrade() -> None:
    with op.batch_alter_table('project') as batch:
        batch.drop_column('label_source')
    op.drop_index('ix_adjudication_image_finding', table_name='adjudication')
    op.drop_table('adjudication')
