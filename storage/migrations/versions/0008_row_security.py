"""Row-level security on PostgreSQL: a reader's own database role sees only their answers (issue 16).

Readers' answers live in ``read``, ``regional_label``, ``diagnosis_label`` and ``landmark``. Each
gets a policy that shows a row to the reader it belongs to (their role is named
``<database>_reader_<id>``, storage/database_roles.py), to reviewers and admins, and (landmarks)
the model's guesses to everyone. The owner that workstations connect as is not bound by the
policies (PostgreSQL exempts a table's owner unless forced), so Octant's own queries, which
keep blind reading in code, are unchanged. SQLite has no roles: nothing to do there.

Revision ID: 0008_row_security
Revises: 0007_sign_in_tries
"""
from alembic import op


revision = '0008_row_security'
down_revision = '0007_sign_in_tries'
branch_labels = None
depends_on = None

ANSWER_TABLES = ("read", "regional_label", "diagnosis_label", "landmark")

# Called with the row's reader and the caller's current_user (evaluated in the policy, so it is
# the connecting reader's role); SECURITY DEFINER so it may look up roles in ``reader``, which a
# reader's role cannot read in full.
MAY_SEE = """
CREATE FUNCTION octant_may_see(owner_id integer, who name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT who::text = current_database() || '_reader_' || owner_id::text
        OR EXISTS (SELECT 1 FROM reader
                   WHERE who::text = current_database() || '_reader_' || reader.id::text
                     AND reader.active AND reader.role IN ('reviewer', 'admin'))
$$
"""
MAY_SEE_READ = """
CREATE FUNCTION octant_may_see_read(read_id integer, who name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT octant_may_see((SELECT reader_id FROM read WHERE read.id = read_id), who)
$$
"""
POLICIES = {
    "read": "octant_may_see(reader_id, current_user)",
    "regional_label": "octant_may_see_read(read_id, current_user)",
    "diagnosis_label": "octant_may_see_read(read_id, current_user)",
    "landmark": "reader_id IS NULL OR octant_may_see(reader_id, current_user)",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(MAY_SEE)
    op.execute(MAY_SEE_READ)
    for table, condition in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY own_answers ON {table} FOR ALL USING ({condition})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in POLICIES:
        op.execute(f"DROP POLICY own_answers ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION octant_may_see_read(integer, name)")
    op.execute("DROP FUNCTION octant_may_see(integer, name)")
