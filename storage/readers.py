"""Readers: the people who label images, their roles and credentials, and the admin's actions.

A reader signs in with a PIN or passphrase (``storage.credentials``: only a salted scrypt hash is
kept); reviewers need one, admins a passphrase, other readers may have none. Adding readers,
changing roles, retiring and reinstating them and resetting a credential are admin actions: each
checks, inside its own transaction, that the acting reader is an active admin. The first admin
is made by ``create_first_admin`` (``main.py init --admin NAME``). The caller signs the acting
reader in first (``sign_in``); what protects the database itself is in docs/roles.md.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from storage import credentials
from storage.audit import record
from storage.database import Database
from storage.errors import AccessDeniedError, InvalidRequestError, NotFoundError
from storage.schema import Reader, utc_now


class Role(str, Enum):
    OPHTHALMOLOGIST = "ophthalmologist"
    RETINA_SPECIALIST = "retina_specialist"
    GLAUCOMA_SPECIALIST = "glaucoma_specialist"
    REVIEWER = "reviewer"
    ADMIN = "admin"

    @classmethod
    def parse(cls, text: str | Role) -> Role:
        try:
            return cls(str(getattr(text, "value", text)).strip().lower().replace(" ", "_").replace("-", "_"))
        except ValueError:
            names = ", ".join(role.value for role in cls)
            raise InvalidRequestError(f"Unknown role {text!r}; use one of {names}.") from None


# Roles that may see every reader's labels (blind reading does not apply to them).
REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})


@dataclass(frozen=True)
class ReaderInfo:
    id: int
    name: str
    role: Role
    has_pin: bool   # has a credential (PIN or passphrase)
    active: bool
    credential_kind: str | None = None   # "pin" or "passphrase"; None: none, or not known yet

    @property
    def credential_name(self) -> str:
        """What this reader signs in with, in the words a user meets: an admin always has a passphrase;
        a credential set before its kind was noted (until typed once) is "PIN or passphrase"."""
        if self.credential_kind == "pin":
            return "PIN"
        if self.credential_kind == "passphrase" or self.role is Role.ADMIN:
            return "passphrase"
        return "PIN or passphrase"


def _info(reader: Reader) -> ReaderInfo:
    return ReaderInfo(reader.id, reader.name, Role(reader.role), reader.pin_hash is not None, reader.active,
                      reader.credential_kind if reader.pin_hash is not None else None)


def _kind(secret: str | None) -> str | None:
    return credentials.kind_of(secret) if secret else None


def _not_found(reader_id: int) -> NotFoundError:
    return NotFoundError(f"There is no reader number {reader_id}; pick one from the reader list.")


def _checked_secret(role: Role, secret: str | None, credential_later: bool = False) -> str | None:
    """The hash to store for a new credential of a reader with ``role``, after the length rules."""
    if secret is not None and not secret:
        raise InvalidRequestError("A PIN cannot be empty; leave it out for no PIN.")
    if secret is None and credential_later:
        return None
    if secret is None:
        if role is Role.ADMIN:
            raise InvalidRequestError("An admin needs a passphrase; give one (at least "
                                      f"{credentials.MIN_PASSPHRASE_CHARS} characters).")
        if role in REVIEW_ROLES:
            raise InvalidRequestError("A reviewer sees every reader's labels, so needs a PIN or passphrase.")
        return None
    credentials.check_new_secret(secret, needs_passphrase=role is Role.ADMIN)
    return credentials.hash_secret(secret)


def check_admin(session: Session, acting_reader_id: int | None) -> Reader:
    """Inside an admin action's transaction: the acting reader, when an active admin."""
    acting = session.get(Reader, acting_reader_id) if acting_reader_id is not None else None
    if acting is None or acting.role != Role.ADMIN.value or not acting.active:
        raise AccessDeniedError("Only an admin can do that; sign in as an admin (on the command line: --as NAME).")
    if acting.pin_hash is None:   # an admin from before credentials were required
        raise AccessDeniedError(f"{acting.name} has no passphrase yet; another admin sets one (`readers reset-pin`); "
                                "where no admin has one, add an admin with a passphrase (`readers add NAME --role admin`).")
    return acting


def require_admin(db: Database, reader_id: int | None) -> ReaderInfo:
    """The reader, when they are an active admin; else AccessDeniedError."""
    with db.reading() as session:
        return _info(check_admin(session, reader_id))


def _insert_reader(session: Session, name: str, role: Role, pin_hash: str | None, credential_kind: str | None,
                   acting_reader_id: int | None) -> ReaderInfo:
    name = name.strip()
    if not name:
        raise InvalidRequestError("A reader needs a name.")
    if session.scalar(select(Reader.id).where(Reader.name == name)) is not None:
        raise InvalidRequestError(f"A reader called {name!r} exists already; choose another name.")
    reader_id = session.execute(
        insert(Reader).returning(Reader.id),
        dict(name=name, role=role.value, pin_hash=pin_hash, credential_kind=credential_kind, active=True,
             failed_sign_ins=0),
    ).scalar_one()
    record(session, "reader", reader_id, "create", None,
           dict(name=name, role=role.value, has_pin=pin_hash is not None), acting_reader_id)
    return ReaderInfo(reader_id, name, role, pin_hash is not None, True, credential_kind)


def _admins_who_can_sign_in(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Reader).where(
        Reader.role == Role.ADMIN.value, Reader.active, Reader.pin_hash.is_not(None))).scalar_one()


def has_admin(db: Database) -> bool:
    """Whether an active admin with a passphrase exists (else ``create_first_admin`` is open)."""
    with db.reading() as session:
        return bool(_admins_who_can_sign_in(session))


def create_first_admin(db: Database, name: str, passphrase: str) -> ReaderInfo:
    """The project's first admin (``init --admin``): refused once an active admin with a
    passphrase exists. (A project from before credentials has none until this is done.)"""
    pin_hash = _checked_secret(Role.ADMIN, passphrase)
    with db.transaction(lock="readers") as session:
        if _admins_who_can_sign_in(session):
            raise AccessDeniedError("This project has an admin already; ask them to add you (`readers add`).")
        return _insert_reader(session, name, Role.ADMIN, pin_hash, _kind(passphrase), None)


def add_reader(
    db: Database, name: str, role: Role | str = Role.OPHTHALMOLOGIST, pin: str | None = None, *,
    acting_reader_id: int | None, credential_later: bool = False,
) -> ReaderInfo:
    """Add a reader (an admin's action); ``pin`` is their PIN or passphrase, needed for reviewers
    and admins (admins: a passphrase). With ``credential_later`` (readers imported from a label
    file) a reviewer or admin may come without one: they cannot sign in until an admin sets it."""
    role = Role.parse(role)
    pin_hash = _checked_secret(role, pin, credential_later)
    with db.transaction(lock="readers") as session:
        check_admin(session, acting_reader_id)
        return _insert_reader(session, name, role, pin_hash, _kind(pin), acting_reader_id)


def list_readers(db: Database, include_inactive: bool = False) -> list[ReaderInfo]:
    query = select(Reader).order_by(Reader.id)
    if not include_inactive:
        query = query.where(Reader.active)
    with db.reading() as session:
        return [_info(reader) for reader in session.scalars(query)]


def get_reader(db: Database, reader_id: int) -> ReaderInfo:
    with db.reading() as session:
        reader = session.get(Reader, reader_id)
        if reader is None:
            raise _not_found(reader_id)
        return _info(reader)


def find_reader(db: Database, name: str) -> ReaderInfo:
    with db.reading() as session:
        reader = session.scalars(select(Reader).where(Reader.name == name.strip())).first()
        if reader is None:
            raise NotFoundError(f"There is no reader called {name!r}; ask an admin to add them (`readers add`).")
        return _info(reader)


def sign_in(db: Database, reader_id: int, secret: str | None) -> ReaderInfo:
    """Check a reader's PIN or passphrase; the reader when right, else AccessDeniedError.

    A wrong try is counted before the (slow) check, so stopping the program mid-check does not
    save a guess, and the next try waits ``credentials.wait_after(count)``; both are kept in the
    database and every wrong try is audited. A hash of an older cost is re-hashed when right."""
    now = utc_now()
    with db.transaction(lock="readers") as session:
        reader = session.get(Reader, reader_id)
        if reader is None:
            raise _not_found(reader_id)
        if not reader.active:
            raise AccessDeniedError(f"{reader.name} is retired; an admin can reinstate them (`readers reinstate`).")
        info = _info(reader)
        if reader.pin_hash is None and info.role in REVIEW_ROLES:
            raise AccessDeniedError(f"{reader.name} has no PIN or passphrase yet; an admin sets one "
                                    f"(`readers reset-pin {reader.name}`).")
        if reader.pin_hash is None:
            if secret:
                raise AccessDeniedError(f"{reader.name} has no PIN; sign in without one.")
            return info
        retry_after = credentials.as_utc(reader.retry_after)
        if retry_after is not None and retry_after > now:
            seconds = int((retry_after - now).total_seconds()) + 1
            raise AccessDeniedError(f"Too many wrong tries for {reader.name}; try again in {seconds} s.")
        stored, tries, kind_noted = reader.pin_hash, reader.failed_sign_ins + 1, reader.credential_kind is not None
        session.execute(update(Reader).where(Reader.id == reader_id).values(
            failed_sign_ins=tries, retry_after=credentials.retry_time(now, tries)))
    if not (secret and credentials.secret_matches(stored, secret)):
        wait = credentials.wait_after(tries)
        with db.transaction() as session:
            record(session, "reader", reader_id, "sign_in_failed", None,
                   dict(wrong_tries=tries, wait_s=wait), reader_id)
        then = f"; wait {wait} s before the next try" if wait else ""
        raise AccessDeniedError(f"That PIN or passphrase is not right for {info.name}{then}.")
    values: dict = dict(failed_sign_ins=0, retry_after=None)
    if credentials.needs_rehash(stored):   # hashed outside the transaction: SQLite has one writer
        values["pin_hash"] = credentials.hash_secret(secret)
    with db.transaction(lock="readers") as session:
        if "pin_hash" in values:
            record(session, "reader", reader_id, "rehash_credential", None,
                   dict(cost=vars(credentials.CURRENT_COST)), reader_id)
        if tries > 1:
            record(session, "reader", reader_id, "sign_in", dict(wrong_tries=tries - 1), dict(wrong_tries=0),
                   reader_id)
        session.execute(update(Reader).where(Reader.id == reader_id).values(**values))
        if not kind_noted:   # set before the kind was noted: the secret in hand tells it (unless reset meanwhile)
            info = replace(info, credential_kind=credentials.kind_of(secret))
            session.execute(update(Reader).where(Reader.id == reader_id, Reader.pin_hash == values.get("pin_hash", stored),
                                                 Reader.credential_kind.is_(None))
                            .values(credential_kind=info.credential_kind))
    return info


def change_own_pin(db: Database, reader_id: int, old: str | None, new: str | None) -> None:
    """A reader changes their own PIN or passphrase, proving the old one (``readers pin``); None
    removes it where the role allows no credential."""
    info = sign_in(db, reader_id, old)
    pin_hash = _checked_secret(info.role, new)
    with db.transaction(lock="readers") as session:
        session.execute(update(Reader).where(Reader.id == reader_id).values(pin_hash=pin_hash,
                                                                            credential_kind=_kind(new)))
        record(session, "reader", reader_id, "set_pin", dict(has_pin=info.has_pin),
               dict(has_pin=pin_hash is not None), reader_id)


def _role_unchanged(reader: Reader | None, reader_id: int, role: Role) -> Reader:
    if reader is None:
        raise _not_found(reader_id)
    if reader.role != role.value:
        raise InvalidRequestError(f"{reader.name}'s role changed meanwhile; try again.")
    return reader


def reset_pin(db: Database, reader_id: int, new: str | None, *, acting_reader_id: int | None) -> None:
    """An admin sets a reader's PIN or passphrase without the old one (a forgotten PIN) and clears
    their wrong tries; the audit records only that it changed."""
    require_admin(db, acting_reader_id)   # before the slow hash, which is made outside the write lock
    role = get_reader(db, reader_id).role
    pin_hash = _checked_secret(role, new)
    with db.transaction(lock="readers") as session:
        check_admin(session, acting_reader_id)
        reader = _role_unchanged(session.get(Reader, reader_id), reader_id, role)
        record(session, "reader", reader_id, "reset_pin", dict(has_pin=reader.pin_hash is not None),
               dict(has_pin=pin_hash is not None), acting_reader_id)
        session.execute(update(Reader).where(Reader.id == reader_id).values(
            pin_hash=pin_hash, credential_kind=_kind(new), failed_sign_ins=0, retry_after=None))


def _other_active_admins(session: Session, reader_id: int) -> int:
    """Other admins who can sign in (active, with a passphrase)."""
    return session.execute(select(func.count()).select_from(Reader).where(
        Reader.role == Role.ADMIN.value, Reader.active, Reader.pin_hash.is_not(None), Reader.id != reader_id)).scalar_one()


def set_role(db: Database, reader_id: int, role: Role | str, *, acting_reader_id: int | None,
             new_pin: str | None = None) -> None:
    """An admin changes a reader's role. Becoming an admin needs a new passphrase (``new_pin``),
    becoming a reviewer a PIN unless they have one; the last admin stays an admin."""
    role = Role.parse(role)
    require_admin(db, acting_reader_id)
    current = get_reader(db, reader_id)
    values: dict = dict(role=role.value)
    if new_pin is not None or role is Role.ADMIN or (role in REVIEW_ROLES and not current.has_pin):
        values["pin_hash"] = _checked_secret(role, new_pin)
        values["credential_kind"] = _kind(new_pin)
    with db.transaction(lock="readers") as session:
        check_admin(session, acting_reader_id)
        reader = _role_unchanged(session.get(Reader, reader_id), reader_id, current.role)
        if reader.role == Role.ADMIN.value and role is not Role.ADMIN and not _other_active_admins(session, reader_id):
            raise InvalidRequestError(f"{reader.name} is the only admin; make another admin first.")
        record(session, "reader", reader_id, "set_role", dict(role=reader.role),
               dict(role=role.value, new_pin="pin_hash" in values), acting_reader_id)
        session.execute(update(Reader).where(Reader.id == reader_id).values(**values))


def set_reader_active(db: Database, reader_id: int, active: bool, *, acting_reader_id: int | None) -> None:
    """Retire (or reinstate) a reader, an admin's action: a retired reader's labels stay, they get
    no new assignments and can neither sign in nor save."""
    with db.transaction(lock="readers") as session:
        check_admin(session, acting_reader_id)
        reader = session.get(Reader, reader_id)
        if reader is None:
            raise _not_found(reader_id)
        if not active and reader.role == Role.ADMIN.value and not _other_active_admins(session, reader_id):
            raise InvalidRequestError(f"{reader.name} is the only admin; make another admin first.")
        record(session, "reader", reader_id, "set_active", dict(active=reader.active), dict(active=active),
               acting_reader_id)
        session.execute(update(Reader).where(Reader.id == reader_id).values(active=active))
        if not active:   # PostgreSQL: their own database login goes too (an admin gives it back)
            from storage.database_roles import take_reader_login

            take_reader_login(session, reader_id)
