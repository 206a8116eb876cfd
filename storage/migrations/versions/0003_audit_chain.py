"""Tamper-evident audit: hash-chain columns (existing events chained in id order) and triggers
that refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) of audit events.

Revision ID: 0003_audit_chain
Revises: 0002_adjudication
"""
from alembic import op
import sqlalchemy as sa

from storage.audit import GENESIS, content_hash

revision = '0003_audit_chain'
down_revision = '0002_adjudication'
branch_labels = None
depends_on = None

REFUSAL = "audit events are append-only: they cannot be changed or deleted"

_events = sa.table(
    'audit_event',
    sa.column('id', sa.Integer), sa.column('reader_id', sa.Integer), sa.column('actor', sa.String),
    sa.column('at', sa.DateTime(timezone=True)), sa.column('entity', sa.String),
    sa.column('entity_id', sa.Integer), sa.column('action', sa.String), sa.column('before', sa.JSON),
    sa.column('after', sa.JSON), sa.column('prev_hash', sa.String), sa.column('row_hash', sa.String),
)


def upgrade() -> None:
    op.add_column('audit_event', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('audit_event', sa.Column('row_hash', sa.String(length=64), nullable=True))
    connection = op.get_bind()
    prev_hash = GENESIS
    rows = connection.execute(sa.select(_events).order_by(_events.c.id)).all()
    links = []
    for row in rows:
        row_hash = content_hash(row.id, prev_hash, row.reader_id, row.actor, row.at, row.entity, row.entity_id,
                                row.action, row.before, row.after)
        links.append(dict(event_id=row.id, link=prev_hash, own=row_hash))
        prev_hash = row_hash
    chain = (_events.update().where(_events.c.id == sa.bindparam('event_id'))
             .values(prev_hash=sa.bindparam('link'), row_hash=sa.bindparam('own')))
    for first in range(0, len(links), 5000):  # executemany: a clinic's years of events in seconds
        connection.execute(chain, links[first:first + 5000])
    op.create_index('ux_audit_event_prev_hash', 'audit_event', ['prev_hash'], unique=True)
    if connection.dialect.name == 'postgresql':
        op.execute(f"""
            CREATE FUNCTION octant_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$""")
        op.execute("CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
                   "FOR EACH ROW EXECUTE FUNCTION octant_audit_append_only()")
        op.execute("CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
                   "FOR EACH STATEMENT EXECUTE FUNCTION octant_audit_append_only()")
    else:
        for verb in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION octant_audit_append_only()")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    op.drop_index('ux_audit_event_prev_hash', table_name='audit_event')
    with op.batch_alter_table('audit_event') as batch:
        batch.drop_column('row_hash')
        batch.drop_column('prev_hash')
