"""Readers, roles and PINs (salted scrypt hashes only)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.audit import audit_events
from storage.errors import InvalidRequestError, NotFoundError
from storage.readers import (
    Role, add_reader, find_reader, list_readers, set_pin, set_reader_active, verify_pin,
)
from storage.schema import Reader


def stored_hashes(db) -> list[str | None]:
    with db.reading() as session:
        return list(session.scalars(select(Reader.pin_hash).order_by(Reader.id)))


def test_a_pin_is_stored_only_as_a_salted_scrypt_hash(tmp_project):
    db = tmp_project.database
    a = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, pin="2468")
    b = add_reader(db, "Dr B", Role.OPHTHALMOLOGIST, pin="2468")
    hash_a, hash_b = stored_hashes(db)
    assert hash_a.startswith("scrypt$") and "2468" not in hash_a
    assert hash_a != hash_b  # a fresh salt per reader
    assert verify_pin(db, a.id, "2468") and verify_pin(db, b.id, "2468")
    assert not verify_pin(db, a.id, "1357") and not verify_pin(db, a.id, None)
    assert all("2468" not in str(event.after) for event in audit_events(db, "reader"))


def test_a_reader_without_pin_needs_none_and_pins_can_change(tmp_project):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", "retina specialist")
    assert reader.role is Role.RETINA_SPECIALIST and not reader.has_pin
    assert verify_pin(db, reader.id, None) and not verify_pin(db, reader.id, "0000")
    set_pin(db, reader.id, "0000")
    assert verify_pin(db, reader.id, "0000") and find_reader(db, "Dr A").has_pin
    set_pin(db, reader.id, None)
    assert verify_pin(db, reader.id, None)
    with pytest.raises(NotFoundError):
        verify_pin(db, 999, None)


def test_names_are_unique_and_roles_known(tmp_project):
    db = tmp_project.database
    add_reader(db, "Dr A", Role.ADMIN)
    with pytest.raises(InvalidRequestError, match="exists already"):
        add_reader(db, "Dr A", Role.REVIEWER)
    with pytest.raises(InvalidRequestError, match="Unknown role"):
        add_reader(db, "Dr B", "optometrist")
    assert [r.name for r in list_readers(db)] == ["Dr A"]


def test_a_retired_reader_leaves_the_list_but_not_the_database(tmp_project):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST)
    set_reader_active(db, reader.id, False)
    assert list_readers(db) == []
    assert [r.active for r in list_readers(db, include_inactive=True)] == [False]
    assert [e.action for e in audit_events(db, "reader", reader.id)] == ["create", "set_active"]
