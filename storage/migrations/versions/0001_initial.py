"""The first schema: project, findings, images, readers, reads and labels, audit, predictions, models.

Written out in full (not created from the current models) so that later revisions apply to
exactly this schema.

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('image',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('laterality', sa.String(length=5), nullable=True),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('fov_cx', sa.Float(), nullable=True),
    sa.Column('fov_cy', sa.Float(), nullable=True),
    sa.Column('fov_r', sa.Float(), nullable=True),
    sa.Column('crop_x0', sa.Integer(), nullable=True),
    sa.Column('crop_y0', sa.Integer(), nullable=True),
    sa.Column('crop_x1', sa.Integer(), nullable=True),
    sa.Column('crop_y1', sa.Integer(), nullable=True),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image')),
    sa.UniqueConstraint('path', name=op.f('uq_image_path')),
    sa.UniqueConstraint('sha256', name=op.f('uq_image_sha256'))
    )
    op.create_index('ix_image_split', 'image', ['split'])

    op.create_table('project',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('consensus_k', sa.Integer(), nullable=False),
    sa.Column('hide_suggestions_on_test', sa.Boolean(), nullable=False),
    sa.Column('split_roles', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project'))
    )
    op.create_table('reader',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=24), nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reader')),
    sa.UniqueConstraint('name', name=op.f('uq_reader_name'))
    )
    op.create_table('trained_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('network', sa.String(length=60), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('label_snapshot', sa.JSON(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trained_model'))
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['reader_id'], ['reader.id'], name=op.f('fk_audit_event_reader_id_reader'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    op.create_index('ix_audit_event_entity', 'audit_event', ['entity', 'entity_id'])

    op.create_table('diagnosis_class',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_diagnosis_class_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diagnosis_class')),
    sa.UniqueConstraint('name', name=op.f('uq_diagnosis_class_name'))
    )
    op.create_table('finding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('key', sa.String(length=8), nullable=False),
    sa.Column('size_class', sa.String(length=8), nullable=False),
    sa.Column('lesion_channel', sa.String(length=8), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_finding_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finding')),
    sa.UniqueConstraint('code', name=op.f('uq_finding_code'))
    )
    op.create_table('landmark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('disc_x', sa.Float(), nullable=False),
    sa.Column('disc_y', sa.Float(), nullable=False),
    sa.Column('fovea_x', sa.Float(), nullable=False),
    sa.Column('fovea_y', sa.Float(), nullable=False),
    sa.Column('model_version', sa.String(length=120), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_landmark_image_id_image'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reader_id'], ['reader.id'], name=op.f('fk_landmark_reader_id_reader'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_landmark'))
    )
    op.create_index('ix_landmark_image_reader', 'landmark', ['image_id', 'reader_id'])

    op.create_table('prediction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('model_version', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_prediction_image_id_image'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prediction'))
    )
    op.create_index('ix_prediction_image_kind', 'prediction', ['image_id', 'kind', 'id'])

    op.create_table('read',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('normal', sa.Boolean(), nullable=False),
    sa.Column('ungradable', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_read_image_id_image'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reader_id'], ['reader.id'], name=op.f('fk_read_reader_id_reader'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_read')),
    sa.UniqueConstraint('image_id', 'reader_id', name=op.f('uq_read_image_id_reader_id')),
    sa.UniqueConstraint('reader_id', 'position', name=op.f('uq_read_reader_id_position'))
    )
    op.create_index('ix_read_queue', 'read', ['reader_id', 'done', 'position'])

    op.create_table('diagnosis_label',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('read_id', sa.Integer(), nullable=False),
    sa.Column('diagnosis_class_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['diagnosis_class_id'], ['diagnosis_class.id'], name=op.f('fk_diagnosis_label_diagnosis_class_id_diagnosis_class'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['read_id'], ['read.id'], name=op.f('fk_diagnosis_label_read_id_read'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diagnosis_label')),
    sa.UniqueConstraint('read_id', name=op.f('uq_diagnosis_label_read_id'))
    )
    op.create_table('regional_label',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('read_id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('regions', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['finding.id'], name=op.f('fk_regional_label_finding_id_finding'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['read_id'], ['read.id'], name=op.f('fk_regional_label_read_id_read'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regional_label')),
    sa.UniqueConstraint('read_id', 'finding_id', name=op.f('uq_regional_label_read_id_finding_id'))
    )
    op.create_index('ix_regional_label_finding_id', 'regional_label', ['finding_id'])


def downgrade() -> None:
    op.drop_index('ix_regional_label_finding_id', table_name='regional_label')
    op.drop_table('regional_label')
    op.drop_table('diagnosis_label')
    op.drop_index('ix_read_queue', table_name='read')
    op.drop_table('read')
    op.drop_index('ix_prediction_image_kind', table_name='prediction')
    op.drop_table('prediction')
    op.drop_index('ix_landmark_image_reader', table_name='landmark')
    op.drop_table('landmark')
    op.drop_table('finding')
    op.drop_table('diagnosis_class')
    op.drop_index('ix_audit_event_entity', table_name='audit_event')
    op.drop_table('audit_event')
    op.drop_table('trained_model')
    op.drop_table('reader')
    op.drop_table('project')
    op.drop_index('ix_image_split', table_name='image')
    op.drop_table('image')
