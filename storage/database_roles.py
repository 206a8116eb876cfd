"""One PostgreSQL role per reader, under the row-level security of migration 0008.

``readers db-login NAME --as ADMIN`` gives a reader a database login of their own, named
``<database>_reader_<id>``: it may read the project's photos and settings and, through the
policies on ``read``, ``regional_label``, ``diagnosis_label`` and ``landmark``, only that reader's
answers (reviewers' and admins' roles: everyone's). It cannot write, and cannot read the audit
trail, the readers' credential hashes or another reader's answers, whatever program it connects
with. Retiring the reader takes the login away. SQLite has no roles (docs/roles.md).
"""
from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from storage.database import Database
from storage.errors import DatabaseError, InvalidRequestError
from storage.readers import check_admin, get_reader

# What a reader's role may read: the project's description and photos; answers only through the
# policies; of ``reader``, not the credential columns.
READABLE_TABLES = ("project", "finding", "diagnosis_class", "image", "read", "regional_label",
                   "diagnosis_label", "landmark")
READABLE_READER_COLUMNS = ("id", "name", "role", "active")


def reader_role_name(database_name: str, reader_id: int) -> str:
    name = f"{database_name}_reader_{reader_id}"
    if len(name.encode()) > 63:   # PostgreSQL cuts longer names, and the policies would not match
        raise InvalidRequestError(f"The database name {database_name!r} is too long for readers' roles; "
                                  "use a name of at most 45 characters.")
    return name


def _require_postgresql(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        raise InvalidRequestError("Readers' own database logins exist on PostgreSQL only; an SQLite project is "
                                  "protected by the operating-system account (docs/roles.md).")


def _quoted(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(name)


def _role_exists(connection: Connection, role: str) -> bool:
    return connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}) is not None


def grant_reader_login(db: Database, reader_id: int, password: str, *, acting_reader_id: int | None) -> str:
    """Create (or update) the reader's database role with a password: an admin's action. Returns
    the role name, to put in that reader's database URL."""
    _require_postgresql(db)
    reader = get_reader(db, reader_id)
    if not reader.active:
        raise InvalidRequestError(f"{reader.name} is retired; reinstate them first (`readers reinstate`).")
    if len(password) < 12:
        raise InvalidRequestError("A database password needs at least 12 characters.")
    with db.transaction(lock="readers") as session:
        check_admin(session, acting_reader_id)
        connection = session.connection()
        database = connection.scalar(text("SELECT current_database()"))
        role = reader_role_name(database, reader_id)
        quoted = _quoted(connection, role)
        # The password is a literal in CREATE/ALTER ROLE (no bind parameters there): quote it as one.
        literal = connection.scalar(text("SELECT quote_literal(:password)"), {"password": password})
        verb = "ALTER" if _role_exists(connection, role) else "CREATE"
        try:
            connection.execute(text(f"{verb} ROLE {quoted} LOGIN PASSWORD {literal}"))
        except Exception as error:
            if "permission denied" in str(error).lower():
                raise DatabaseError("Octant's database user may not create roles; give it CREATEROLE "
                                    "(ALTER ROLE ... CREATEROLE) or ask the database's administrator.") from error
            raise
        connection.execute(text(f"GRANT CONNECT ON DATABASE {_quoted(connection, database)} TO {quoted}"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
        connection.execute(text(f"GRANT SELECT ON {', '.join(READABLE_TABLES)} TO {quoted}"))
        connection.execute(text(f"GRANT SELECT ({', '.join(READABLE_READER_COLUMNS)}) ON reader TO {quoted}"))
        from storage.audit import record

        record(session, "reader", reader_id, "database_login", None, dict(role=role), acting_reader_id)
    return role


def take_reader_login(session: Session, reader_id: int) -> None:
    """Inside retiring a reader (PostgreSQL): their role, if any, may no longer log in."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    role = reader_role_name(connection.scalar(text("SELECT current_database()")), reader_id)
    if _role_exists(connection, role):
        connection.execute(text(f"ALTER ROLE {_quoted(connection, role)} NOLOGIN"))
