"""Readers: the people who label images, their roles and optional PINs.

A PIN is kept only as a salted scrypt hash (``hashlib.scrypt``); it guards a shared workstation
against picking the wrong name, it is not a password store.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import insert, select, update

from storage.audit import record
from storage.database import Database
from storage.errors import InvalidRequestError, NotFoundError
from storage.schema import Reader

# scrypt cost (RFC 7914 interactive parameters): ~16 MiB and tens of ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32


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
    has_pin: bool
    active: bool


def hash_pin(pin: str) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def pin_matches(stored: str, pin: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        pin.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(digest) // 2
    )
    return hmac.compare_digest(candidate.hex(), digest)


def _info(reader: Reader) -> ReaderInfo:
    return ReaderInfo(reader.id, reader.name, Role(reader.role), reader.pin_hash is not None, reader.active)


def add_reader(
    db: Database, name: str, role: Role | str = Role.OPHTHALMOLOGIST, pin: str | None = None,
    acting_reader_id: int | None = None,
) -> ReaderInfo:
    name = name.strip()
    if not name:
        raise InvalidRequestError("A reader needs a name.")
    role = Role.parse(role)
    if pin is not None and not pin:
        raise InvalidRequestError("A PIN cannot be empty; leave it out for no PIN.")
    with db.transaction(lock="readers") as session:
        if session.scalar(select(Reader.id).where(Reader.name == name)) is not None:
            raise InvalidRequestError(f"A reader called {name!r} exists already; choose another name.")
        reader_id = session.execute(
            insert(Reader).returning(Reader.id),
            dict(name=name, role=role.value, pin_hash=hash_pin(pin) if pin else None, active=True),
        ).scalar_one()
        record(session, "reader", reader_id, "create", None,
               dict(name=name, role=role.value, has_pin=pin is not None), acting_reader_id)
    return ReaderInfo(reader_id, name, role, pin is not None, True)


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
            raise NotFoundError(f"There is no reader number {reader_id}; pick one from the reader list.")
        return _info(reader)


def find_reader(db: Database, name: str) -> ReaderInfo:
    with db.reading() as session:
        reader = session.scalars(select(Reader).where(Reader.name == name.strip())).first()
        if reader is None:
            raise NotFoundError(f"There is no reader called {name!r}; add one with `readers add`.")
        return _info(reader)


def verify_pin(db: Database, reader_id: int, pin: str | None) -> bool:
    """True when the PIN matches, or when the reader has no PIN and none was given."""
    with db.reading() as session:
        stored = session.scalar(select(Reader.pin_hash).where(Reader.id == reader_id))
        if stored is None:
            exists = session.scalar(select(Reader.id).where(Reader.id == reader_id)) is not None
            if not exists:
                raise NotFoundError(f"There is no reader number {reader_id}; pick one from the reader list.")
            return not pin
    return pin is not None and pin_matches(stored, pin)


def set_pin(db: Database, reader_id: int, pin: str | None, acting_reader_id: int | None = None) -> None:
    """Set, change or (with None) remove a reader's PIN; the audit records only that it changed."""
    with db.transaction(lock="readers") as session:
        row = session.execute(select(Reader.pin_hash).where(Reader.id == reader_id)).first()
        if row is None:
            raise NotFoundError(f"There is no reader number {reader_id}; pick one from the reader list.")
        session.execute(update(Reader).where(Reader.id == reader_id).values(
            pin_hash=hash_pin(pin) if pin else None))
        record(session, "reader", reader_id, "set_pin", dict(has_pin=row.pin_hash is not None),
               dict(has_pin=bool(pin)), acting_reader_id)


def set_reader_active(db: Database, reader_id: int, active: bool, acting_reader_id: int | None = None) -> None:
    """Retire (or bring back) a reader; their labels stay, they get no new assignments."""
    with db.transaction(lock="readers") as session:
        before = session.scalar(select(Reader.active).where(Reader.id == reader_id))
        if before is None:
            raise NotFoundError(f"There is no reader number {reader_id}; pick one from the reader list.")
        session.execute(update(Reader).where(Reader.id == reader_id).values(active=active))
        record(session, "reader", reader_id, "set_active", dict(active=before), dict(active=active),
               acting_reader_id)
