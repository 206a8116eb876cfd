"""Model versions as long as pre-segmentation writes them: it names all five networks
("disc_cup=…;landmarks=…;lesion_detail=…;lesions=…;vessels=…", about 250 characters), which
PostgreSQL refused in VARCHAR(120), so no photo could be pre-segmented there. (SQLite never
enforced the length; its tables are rebuilt so the declared schema matches the models.)

Revision ID: 0010_long_model_versions
Revises: 0009_reading_order
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_long_model_versions'
down_revision = '0009_reading_order'
branch_labels = None
depends_on = None

TABLES = ('prediction', 'landmark')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column('model_version', type_=sa.Text(), existing_type=sa.String(length=120))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column('model_version', type_=sa.String(length=120), existing_type=sa.Text(),
                               postgresql_using='left(model_version, 120)')
