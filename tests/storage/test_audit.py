"""The tamper-evident audit: append-only, hash-chained, verified, exported; UTC times."""
from __future__ import annotations

import csv
import json
from datetime import timedelta

import pytest
from sqlalchemy import text

import main
from storage.audit import GENESIS, audit_events, record, state_digest, verify
from storage.labels import ReadState, state_json
from storage.readers import Role
from storage.reading import ReaderSession
from tests.conftest import ADMIN_PASSPHRASE, add_reader_as_admin


def some_events(clinic) -> ReaderSession:
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = s.next_unfinished().id
    for region in (1, 2, 3):
        s.toggle_region(image, "drusen", region)
    s.set_comment(image, "blurred")
    return s


def tamper(db, backend: str, *statements: str) -> None:
    """What someone with the database file (or its owner's login) could do: drop the triggers first."""
    with db.transaction() as session:
        if backend == "postgresql":
            session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        else:
            session.execute(text("DROP TRIGGER audit_event_no_update"))
            session.execute(text("DROP TRIGGER audit_event_no_delete"))
        for statement in statements:
            session.execute(text(statement))


def test_a_fresh_chain_verifies_and_its_head_is_the_last_event(clinic):
    some_events(clinic)
    db = clinic.project.database
    events = audit_events(db)
    report = verify(db)
    assert report.intact and report.events == len(events) > 10
    assert events[0].prev_hash == GENESIS and report.head == events[-1].row_hash
    assert all(later.prev_hash == earlier.row_hash for earlier, later in zip(events, events[1:]))
    assert verify(db, expect_head=report.head).intact


@pytest.mark.parametrize("statement", [
    "UPDATE audit_event SET actor = 'mallory' WHERE id = 3",
    "DELETE FROM audit_event WHERE id = 3",
    "DELETE FROM audit_event",
])
def test_the_database_refuses_to_change_or_delete_audit_events(clinic, statement):
    some_events(clinic)
    db = clinic.project.database
    before = audit_events(db)
    with pytest.raises(Exception, match="append-only"):
        with db.transaction() as session:
            session.execute(text(statement))
    assert audit_events(db) == before


@pytest.mark.postgresql_only
def test_postgresql_refuses_to_truncate_the_audit(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    before = audit_events(db)
    with pytest.raises(Exception, match="append-only"):
        with db.transaction() as session:
            session.execute(text("TRUNCATE audit_event"))
    assert audit_events(db) == before


def test_an_edited_event_is_found(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    tamper(db, backend, "UPDATE audit_event SET actor = 'mallory' WHERE id = 5")
    report = verify(db)
    assert not report.intact and len(report.problems) == 1 and "Event 5 " in report.problems[0]
    assert "changed" in report.problems[0]


def test_an_edited_label_value_is_found(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    last = audit_events(db)[-1].id
    tamper(db, backend, f"UPDATE audit_event SET after = '{{\"comment\": \"sharp\"}}' WHERE id = {last}")
    assert [p.split(" (")[0] for p in verify(db).problems] == [f"Event {last}"]


def test_a_deleted_event_is_found(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    tamper(db, backend, "DELETE FROM audit_event WHERE id = 4")
    problems = verify(db).problems
    assert len(problems) == 1 and "Event 5 does not follow" in problems[0]


def test_an_inserted_event_is_found_even_with_a_well_formed_hash(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    events = audit_events(db)
    # A forger who knows the hashing rule inserts an event that links correctly to event 4 ...
    from storage.audit import content_hash
    at = events[3].at + timedelta(microseconds=1)
    forged_id = 1000
    forged = content_hash(forged_id, events[3].row_hash, None, "mallory", at, "read", 1, "set_comment", None, None)
    tamper(db, backend, "DROP INDEX ux_audit_event_prev_hash",
           "INSERT INTO audit_event (id, reader_id, actor, at, entity, entity_id, action, before, after, prev_hash, "
           f"row_hash) VALUES ({forged_id}, NULL, 'mallory', '{at.isoformat()}', 'read', 1, 'set_comment', NULL, NULL, "
           f"'{events[3].row_hash}', '{forged}')")
    problems = verify(db).problems
    # ... but the real event 5 still follows event 4, so the forgery does not follow the last event
    assert problems and any("Event 1000 does not follow" in p for p in problems)


def test_reordered_events_are_found(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    # swap the ids of events 3 and 4 (through a free id)
    tamper(db, backend, "UPDATE audit_event SET id = 100000 WHERE id = 3",
           "UPDATE audit_event SET id = 3 WHERE id = 4", "UPDATE audit_event SET id = 4 WHERE id = 100000")
    problems = verify(db).problems
    assert any(p.startswith("Event 3 ") for p in problems) and any(p.startswith("Event 4 ") for p in problems)


def test_events_removed_from_the_end_are_found_against_the_noted_head(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    head = verify(db).head
    last = audit_events(db)[-1].id
    tamper(db, backend, f"DELETE FROM audit_event WHERE id >= {last - 1}")
    assert verify(db).intact  # the shorter chain is consistent in itself ...
    problems = verify(db, expect_head=head).problems
    assert len(problems) == 1 and "removed" in problems[0]  # ... but not with the head noted before


def test_times_are_utc_and_timezone_aware(clinic, backend):
    some_events(clinic)
    db = clinic.project.database
    if backend == "postgresql":  # the server's clock, whatever this session's time zone
        with db.transaction() as session:
            session.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
            record(session, "test", None, "clock", None, None)
            server_now = session.execute(text("SELECT clock_timestamp()")).scalar()
        assert abs(audit_events(db)[-1].at - server_now) < timedelta(seconds=5)
    for event in audit_events(db):
        assert event.at.tzinfo is not None and event.at.utcoffset() == timedelta(0)
    assert verify(db).intact


def test_a_restore_is_audited_as_what_was_stored(clinic):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = s.next_unfinished().id
    s.set_regions(image, "drusen", {1})
    # asked: "normal" together with a finding; stored: the finding (a finding withdraws normal)
    stored = s.restore(image, ReadState(regions={"haemorrhage": frozenset({2})}, normal=True, comment="x"))
    event = audit_events(clinic.project.database, "read")[-1]
    assert event.action == "restore" and event.after["normal"] is False and stored.normal is False
    assert event.after["regions"] == {"haemorrhage": [2]}
    assert event.after["state_sha256"] == state_digest(state_json(s.read(image)))


def test_every_label_write_carries_the_digest_of_the_stored_state(clinic):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = s.next_unfinished().id
    s.set_regions(image, "drusen", {1, 4})
    s.set_diagnosis(image, "no DR")
    event = audit_events(clinic.project.database, "read")[-1]
    assert event.after["state_sha256"] == state_digest(state_json(s.read(image)))


def test_export_writes_every_event_as_json_and_csv(clinic, tmp_path, monkeypatch, capsys):
    some_events(clinic)
    args = ["audit", "export", "--out", str(tmp_path / "no.csv"), "--project", str(clinic.project.root), *url_args(clinic)]
    assert main.main(args) == 1 and "--as NAME of a reviewer or admin" in capsys.readouterr().err
    assert main.main([*args, "--as", clinic.ophthalmologists[0].name]) == 1   # labels of every reader: refused
    assert "reviewers and admins only" in capsys.readouterr().err and not (tmp_path / "no.csv").exists()
    monkeypatch.setenv("OCTANT_CREDENTIAL", ADMIN_PASSPHRASE)
    db = clinic.project.database
    events = audit_events(db)
    assert main.main(["audit", "export", "--format", "json", "--out", str(tmp_path / "a.json"), "--as", "Admin",
                      "--project", str(clinic.project.root), *url_args(clinic)]) == 0
    rows = json.loads((tmp_path / "a.json").read_text())
    assert [r["row_hash"] for r in rows] == [e.row_hash for e in events]
    assert rows[-1]["at"].endswith("+00:00") and rows[-1]["after"] == events[-1].after
    assert main.main(["audit", "export", "--out", str(tmp_path / "a.csv"), "--as", "Admin",
                      "--project", str(clinic.project.root), *url_args(clinic)]) == 0
    with (tmp_path / "a.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(events) and json.loads(table[-1]["after"]) == events[-1].after


def url_args(clinic) -> list[str]:
    url = clinic.project.database.engine.url
    return [] if url.get_backend_name() == "sqlite" else ["--database-url", url.render_as_string(hide_password=False)]


def test_verify_command_says_intact_or_tampered_in_sentences(clinic, backend, capsys, monkeypatch):
    monkeypatch.setenv("OCTANT_CREDENTIAL", ADMIN_PASSPHRASE)
    some_events(clinic)
    args = ["audit", "verify", "--project", str(clinic.project.root), *url_args(clinic)]
    assert main.main(args) == 0
    out = capsys.readouterr().out
    assert "intact" in out and verify(clinic.project.database).head in out
    tamper(clinic.project.database, backend, "UPDATE audit_event SET action = 'x' WHERE id = 2")
    assert main.main(args) == 1
    assert "tampered" in capsys.readouterr().out
    assert main.main(["audit", "export", "--out", "/nonexistent/dir/a.csv", "--as", "Admin", "--project",
                      str(clinic.project.root), *url_args(clinic)]) == 1
    assert "Cannot write" in capsys.readouterr().err


@pytest.mark.sqlite_only
def test_events_saved_before_the_chain_existed_are_chained_by_the_upgrade(tmp_path, backend):
    from alembic import command
    from sqlalchemy import create_engine

    from storage.database import Database, alembic_config, sqlite_url

    url = sqlite_url(tmp_path / "old.sqlite")
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        for i in range(3):
            connection.execute(text(
                "INSERT INTO audit_event (actor, at, entity, entity_id, action, before, after) "
                f"VALUES ('old', '2026-01-0{i + 1} 10:00:00.000000', 'reader', {i}, 'create', NULL, '{{\"n\": {i}}}')"))
    engine.dispose()
    db = Database.open(url)  # upgrades (after a pre-upgrade copy)
    try:
        report = verify(db)
        assert report.intact and report.events == 3
        add_reader_as_admin(db, "Dr New", Role.OPHTHALMOLOGIST)   # the admin, then the reader
        assert verify(db).intact and verify(db).events == 5
    finally:
        db.dispose()


@pytest.mark.sqlite_only
def test_a_long_verify_stops_when_cancelled(tmp_project, backend):
    import threading

    from storage.errors import CancelledError

    with tmp_project.database.transaction() as session:
        for i in range(2100):
            record(session.connection(), "test", i, "fill", None, {"i": i})
    cancel = threading.Event()
    assert verify(tmp_project.database, cancel=cancel).intact
    cancel.set()
    with pytest.raises(CancelledError):
        verify(tmp_project.database, cancel=cancel)
