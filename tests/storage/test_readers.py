"""Readers, roles and credentials: admins' actions need an admin, credentials are long enough and
stored only as salted scrypt hashes, wrong tries make the next one wait (kept in the database)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from storage import credentials
from storage.audit import audit_events
from storage.errors import AccessDeniedError, InvalidRequestError, NotFoundError
from storage.project import open_project
from storage.readers import (
    Role,
    add_reader,
    change_own_pin,
    create_first_admin,
    find_reader,
    get_reader,
    list_readers,
    require_admin,
    reset_pin,
    set_reader_active,
    set_role,
    sign_in,
)
from storage.schema import Reader, utc_now
from tests.conftest import ADMIN_PASSPHRASE, make_admin

PIN = "246810"


def stored(db, reader_id: int) -> Reader:
    with db.reading() as session:
        return session.get(Reader, reader_id)


@pytest.fixture
def admin(tmp_project):
    return make_admin(tmp_project.database)


def test_a_pin_is_stored_only_as_a_salted_scrypt_hash(tmp_project, admin):
    db = tmp_project.database
    a = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, pin=PIN, acting_reader_id=admin.id)
    b = add_reader(db, "Dr B", Role.OPHTHALMOLOGIST, pin=PIN, acting_reader_id=admin.id)
    hash_a, hash_b = stored(db, a.id).pin_hash, stored(db, b.id).pin_hash
    assert hash_a.startswith("scrypt$") and PIN not in hash_a
    assert hash_a != hash_b  # a fresh salt per reader
    assert sign_in(db, a.id, PIN) == a and sign_in(db, b.id, PIN) == b
    for wrong in ("135791", None, ""):
        with pytest.raises(AccessDeniedError, match="not right"):
            sign_in(db, a.id, wrong)
    assert all(PIN not in str(event.after) and ADMIN_PASSPHRASE not in str(event.after)
               for event in audit_events(db, "reader"))


def test_credentials_have_a_minimum_length_and_admins_a_passphrase(tmp_project, admin):
    db = tmp_project.database
    for role, pin, message in (
        (Role.OPHTHALMOLOGIST, "24680", "at least 6 digits"),
        (Role.OPHTHALMOLOGIST, "eleven char", "at least 12 characters"),
        (Role.REVIEWER, None, "needs a PIN or passphrase"),
        (Role.ADMIN, None, "needs a passphrase"),
        (Role.ADMIN, "123456789012345", "not only digits"),
        (Role.ADMIN, "short words", "at least 12 characters"),
    ):
        with pytest.raises(InvalidRequestError, match=message):
            add_reader(db, "Dr X", role, pin, acting_reader_id=admin.id)
    add_reader(db, "Dr P", Role.OPHTHALMOLOGIST, "246802", acting_reader_id=admin.id)
    add_reader(db, "Dr Q", Role.REVIEWER, "a long passphrase", acting_reader_id=admin.id)
    add_reader(db, "Dr N", Role.RETINA_SPECIALIST, None, acting_reader_id=admin.id)   # a reader may have none
    assert sign_in(db, find_reader(db, "Dr N").id, None).name == "Dr N"
    assert [r.name for r in list_readers(db)] == ["Admin", "Dr P", "Dr Q", "Dr N"]


def test_only_a_signed_in_admin_adds_readers(tmp_project, admin):
    db = tmp_project.database
    reviewer = add_reader(db, "Dr R", Role.REVIEWER, PIN, acting_reader_id=admin.id)
    reader = add_reader(db, "Dr O", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
    for acting in (None, reader.id, reviewer.id, 999):
        with pytest.raises(AccessDeniedError, match="Only an admin"):
            add_reader(db, "Mallory", Role.ADMIN, "a long passphrase", acting_reader_id=acting)
    with pytest.raises(AccessDeniedError, match="admin already"):
        create_first_admin(db, "Mallory", "a long passphrase")
    assert "Mallory" not in [r.name for r in list_readers(db)]
    assert require_admin(db, admin.id) == admin
    # An admin from before credentials were required must set a passphrase before acting.
    with db.transaction() as session:
        session.execute(update(Reader).where(Reader.id == admin.id).values(pin_hash=None))
    with pytest.raises(AccessDeniedError, match="no passphrase yet"):
        add_reader(db, "Dr Z", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
    with pytest.raises(AccessDeniedError, match="no PIN or passphrase yet"):   # nor can anyone set it as theirs
        change_own_pin(db, admin.id, None, "a brand new passphrase")
    # No admin can sign in: the project takes a first admin again, who sets the old one's.
    second = create_first_admin(db, "Second admin", "a brand new passphrase")
    reset_pin(db, admin.id, ADMIN_PASSPHRASE, acting_reader_id=second.id)
    add_reader(db, "Dr Z", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)


def test_names_are_unique_and_roles_known(tmp_project, admin):
    db = tmp_project.database
    with pytest.raises(InvalidRequestError, match="exists already"):
        add_reader(db, "Admin", Role.REVIEWER, PIN, acting_reader_id=admin.id)
    with pytest.raises(InvalidRequestError, match="Unknown role"):
        add_reader(db, "Dr B", "optometrist", acting_reader_id=admin.id)
    assert [r.name for r in list_readers(db)] == ["Admin"]


def test_wrong_tries_make_the_next_wait_kept_in_the_database_and_audited(tmp_project, admin):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, PIN, acting_reader_id=admin.id)
    for _ in range(credentials.FREE_WRONG_TRIES):
        with pytest.raises(AccessDeniedError, match="not right for Dr A.$"):
            sign_in(db, reader.id, "000000")
    with pytest.raises(AccessDeniedError, match="wait 15 s"):
        sign_in(db, reader.id, "000000")
    # The wait holds for the right PIN too, and in another connection (another workstation).
    url = None if tmp_project.database.url.startswith("sqlite") else tmp_project.database.url
    with open_project(tmp_project.root, url) as other:
        with pytest.raises(AccessDeniedError, match=r"try again in 1\d s"):
            sign_in(other.database, reader.id, PIN)
    row = stored(db, reader.id)
    assert row.failed_sign_ins == 4 and credentials.as_utc(row.retry_after) > utc_now()
    failed = [e.after for e in audit_events(db, "reader", reader.id) if e.action == "sign_in_failed"]
    assert failed == [dict(wrong_tries=n, wait_s=credentials.wait_after(n)) for n in (1, 2, 3, 4)]
    with db.transaction() as session:   # the 15 s pass
        session.execute(update(Reader).where(Reader.id == reader.id).values(retry_after=utc_now() - timedelta(seconds=1)))
    with pytest.raises(AccessDeniedError, match="wait 30 s"):
        sign_in(db, reader.id, "000000")
    with db.transaction() as session:
        session.execute(update(Reader).where(Reader.id == reader.id).values(retry_after=utc_now() - timedelta(seconds=1)))
    assert sign_in(db, reader.id, PIN).id == reader.id
    assert stored(db, reader.id).failed_sign_ins == 0 and stored(db, reader.id).retry_after is None
    assert audit_events(db, "reader", reader.id)[-1].before == dict(wrong_tries=5)


def test_an_admin_reset_clears_the_wait(tmp_project, admin):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, PIN, acting_reader_id=admin.id)
    for _ in range(credentials.FREE_WRONG_TRIES + 1):
        with pytest.raises(AccessDeniedError):
            sign_in(db, reader.id, "000000")
    with pytest.raises(AccessDeniedError, match="Only an admin"):
        reset_pin(db, reader.id, "135791", acting_reader_id=reader.id)
    reset_pin(db, reader.id, "135791", acting_reader_id=admin.id)
    assert sign_in(db, reader.id, "135791").id == reader.id
    assert [e.action for e in audit_events(db, "reader", reader.id)][-1] == "reset_pin"


def test_an_older_cheaper_hash_verifies_and_is_rehashed_at_the_current_cost(tmp_project, admin):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
    old = credentials.hash_secret("2468", credentials.ScryptCost(2**5, 4, 1))   # a 4-digit PIN of old
    with db.transaction() as session:
        session.execute(update(Reader).where(Reader.id == reader.id).values(pin_hash=old))
    assert credentials.needs_rehash(old)
    sign_in(db, reader.id, "2468")
    new = stored(db, reader.id).pin_hash
    assert new != old and not credentials.needs_rehash(new) and credentials.secret_matches(new, "2468")
    assert audit_events(db, "reader", reader.id)[-1].action == "rehash_credential"
    assert stored(db, reader.id).credential_kind == "pin"   # noted with the re-hash


def test_a_reader_changes_their_own_pin_only_with_the_old_one(tmp_project, admin):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, PIN, acting_reader_id=admin.id)
    with pytest.raises(AccessDeniedError, match="not right"):
        change_own_pin(db, reader.id, "000000", "135791")
    with pytest.raises(InvalidRequestError, match="6 digits"):
        change_own_pin(db, reader.id, PIN, "1357")
    change_own_pin(db, reader.id, PIN, "135791")
    assert sign_in(db, reader.id, "135791").id == reader.id
    with pytest.raises(InvalidRequestError, match="passphrase"):
        change_own_pin(db, admin.id, ADMIN_PASSPHRASE, "13579135791357")   # an admin keeps a passphrase


def test_each_credential_is_named_by_its_kind_however_it_was_set(tmp_project, admin):
    db = tmp_project.database
    assert admin.credential_name == "passphrase" and get_reader(db, admin.id).credential_kind == "passphrase"
    reader = add_reader(db, "Dr K", pin=PIN, acting_reader_id=admin.id)
    assert reader.credential_name == "PIN" and get_reader(db, reader.id).credential_name == "PIN"
    change_own_pin(db, reader.id, PIN, "a phrase of my own")
    assert get_reader(db, reader.id).credential_name == "passphrase"
    reset_pin(db, reader.id, "135791", acting_reader_id=admin.id)
    assert get_reader(db, reader.id).credential_name == "PIN"
    reset_pin(db, reader.id, None, acting_reader_id=admin.id)
    assert get_reader(db, reader.id).credential_kind is None and not get_reader(db, reader.id).has_pin
    set_role(db, reader.id, Role.REVIEWER, acting_reader_id=admin.id, new_pin="a reviewer's phrase")
    assert get_reader(db, reader.id).credential_name == "passphrase"
    with db.transaction() as session:   # set before Octant noted the kind: the sign-in notes it
        session.execute(update(Reader).where(Reader.id == reader.id).values(credential_kind=None))
    assert get_reader(db, reader.id).credential_name == "PIN or passphrase"
    assert sign_in(db, reader.id, "a reviewer's phrase").credential_name == "passphrase"
    assert get_reader(db, reader.id).credential_kind == "passphrase"


def test_roles_change_by_an_admin_and_the_last_admin_stays(tmp_project, admin):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
    with pytest.raises(AccessDeniedError, match="Only an admin"):
        set_role(db, reader.id, Role.ADMIN, acting_reader_id=reader.id, new_pin="a long passphrase")
    with pytest.raises(InvalidRequestError, match="needs a PIN"):
        set_role(db, reader.id, Role.REVIEWER, acting_reader_id=admin.id)
    with pytest.raises(InvalidRequestError, match="needs a passphrase"):
        set_role(db, reader.id, Role.ADMIN, acting_reader_id=admin.id)
    for change in (lambda: set_role(db, admin.id, Role.REVIEWER, acting_reader_id=admin.id),
                   lambda: set_reader_active(db, admin.id, False, acting_reader_id=admin.id)):
        with pytest.raises(InvalidRequestError, match="only admin"):
            change()
    set_role(db, reader.id, Role.ADMIN, acting_reader_id=admin.id, new_pin="a long passphrase")
    assert get_reader(db, reader.id).role is Role.ADMIN and sign_in(db, reader.id, "a long passphrase")
    set_role(db, admin.id, Role.REVIEWER, acting_reader_id=reader.id)   # now there is another admin
    with pytest.raises(AccessDeniedError, match="Only an admin"):
        require_admin(db, admin.id)
    assert [e.after["role"] for e in audit_events(db, "reader") if e.action == "set_role"] == ["admin", "reviewer"]


def test_a_retired_reader_leaves_the_list_and_cannot_sign_in(tmp_project, admin):
    db = tmp_project.database
    reader = add_reader(db, "Dr A", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
    with pytest.raises(AccessDeniedError, match="Only an admin"):
        set_reader_active(db, reader.id, False, acting_reader_id=reader.id)
    set_reader_active(db, reader.id, False, acting_reader_id=admin.id)
    assert [r.name for r in list_readers(db)] == ["Admin"]
    assert [r.active for r in list_readers(db, include_inactive=True)] == [True, False]
    with pytest.raises(AccessDeniedError, match="retired"):
        sign_in(db, reader.id, None)
    set_reader_active(db, reader.id, True, acting_reader_id=admin.id)
    assert sign_in(db, reader.id, None).active
    assert [e.action for e in audit_events(db, "reader", reader.id)] == ["create", "set_active", "set_active"]
    with pytest.raises(NotFoundError):
        sign_in(db, 999, None)


def test_a_reviewer_imported_without_a_credential_waits_for_the_admin(tmp_project, admin):
    db = tmp_project.database
    reviewer = add_reader(db, "Dr R", Role.REVIEWER, acting_reader_id=admin.id, credential_later=True)
    for attempt in (lambda: sign_in(db, reviewer.id, None),
                    lambda: change_own_pin(db, reviewer.id, None, "claimed by anyone")):
        with pytest.raises(AccessDeniedError, match="an admin sets one"):
            attempt()
    reset_pin(db, reviewer.id, PIN, acting_reader_id=admin.id)
    assert sign_in(db, reviewer.id, PIN).role is Role.REVIEWER


def test_the_upgrade_notes_admins_passphrases_and_leaves_the_others_kind_to_their_next_sign_in(tmp_path):
    # Migration 0012: before it no kind was kept; an admin's credential is always a passphrase.
    from alembic import command
    from sqlalchemy import text

    from storage.database import alembic_config, make_engine, sqlite_url, upgrade_schema

    engine = make_engine(sqlite_url(tmp_path / "old.sqlite"))
    config = alembic_config()
    with engine.begin() as connection:   # a database as Octant left it at 0011
        config.attributes["connection"] = connection
        command.upgrade(config, "0011_work_claims")
        for name, role, secret in (("Boss", "admin", ADMIN_PASSPHRASE), ("Dr K", "ophthalmologist", PIN)):
            connection.execute(text("INSERT INTO reader (name, role, pin_hash, active, failed_sign_ins, created_at) "
                                    "VALUES (:name, :role, :hash, 1, 0, '2026-01-01')"),
                               dict(name=name, role=role, hash=credentials.hash_secret(secret)))
        connection.execute(text("INSERT INTO reader (name, role, active, failed_sign_ins, created_at) "
                                "VALUES ('Dr N', 'ophthalmologist', 1, 0, '2026-01-01')"))
    upgrade_schema(engine)
    with engine.connect() as connection:
        kinds = dict(connection.execute(text("SELECT name, credential_kind FROM reader")).all())
    engine.dispose()
    assert kinds == {"Boss": "passphrase", "Dr K": None, "Dr N": None}   # Dr K's is known at the next sign-in
