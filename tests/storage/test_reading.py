"""A reader's session: queue, own labels, blind reading, audit and one transaction per action."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

import storage.reading
from storage.audit import audit_events
from storage.errors import AccessDeniedError, NotFoundError
from storage.reading import ReaderSession
from storage.review import ReviewSession
from storage.schema import AuditEvent, Read, RegionalLabel


def first_image(session: ReaderSession) -> int:
    image = session.next_unfinished()
    assert image is not None
    return image.id


def count(db, table) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_regions_are_saved_as_sets_and_toggled(clinic):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = first_image(s)
    assert s.set_regions(image, "haemorrhage", {1, 5}).regions == {"haemorrhage": frozenset({1, 5})}
    assert s.toggle_region(image, "haemorrhage", 5).regions == {"haemorrhage": frozenset({1})}
    state = s.toggle_region(image, "drusen", 8)
    assert state.regions == {"haemorrhage": frozenset({1}), "drusen": frozenset({8})}
    assert s.set_regions(image, "haemorrhage", set()).regions == {"drusen": frozenset({8})}
    assert s.read(image).regions == {"drusen": frozenset({8})}


def test_normal_is_an_explicit_answer_that_clears_findings(clinic):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = first_image(s)
    assert not s.read(image).normal and not s.read(image).answered
    s.set_regions(image, "membrane", {4})
    state = s.mark_normal(image)
    assert state.normal and state.regions == {} and state.answered
    assert not s.set_regions(image, "membrane", {4}).normal  # a finding withdraws "normal"


def test_diagnosis_comment_ungradable_landmarks_and_done(clinic):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = first_image(s)
    s.set_diagnosis(image, "moderate NPDR")
    s.set_comment(image, "media opacity")
    s.set_ungradable(image, True)
    s.set_landmarks(image, disc=(10.0, 20.0), fovea=(40.0, 22.0))
    state = s.mark_done(image)
    assert (state.diagnosis, state.comment, state.ungradable, state.done) == ("moderate NPDR", "media opacity", True, True)
    assert state.landmarks.disc == (10.0, 20.0) and state.landmarks.source == "manual"
    assert s.set_diagnosis(image, None).diagnosis is None
    with pytest.raises(NotFoundError):
        s.set_diagnosis(image, "glaucoma stage 9")
    with pytest.raises(NotFoundError):
        s.set_regions(image, "no_such_finding", {1})
    with pytest.raises(ValueError):
        s.set_regions(image, "drusen", {9})


def test_queue_order_progress_and_next_unfinished_wraps_round(clinic):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    queue = [image.id for image in s.queue()]
    assert len(queue) >= 3 and s.progress().total == len(queue) and s.progress().done == 0
    s.mark_done(queue[0])
    assert s.next_unfinished().id == queue[1]
    assert s.next_unfinished(after_image_id=queue[1]).id == queue[2]
    assert s.next_unfinished(after_image_id=queue[-1]).id == queue[1]  # wraps to the first unfinished
    for image in queue:
        s.mark_done(image)
    assert s.progress().done == len(queue)
    assert s.next_unfinished() is None


@pytest.mark.sqlite_only
def test_next_unfinished_uses_the_queue_index(clinic):
    with clinic.project.database.engine.connect() as connection:
        plan = connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT image_id FROM read WHERE reader_id = 1 AND done = 0 "
            "AND position > -1 ORDER BY position LIMIT 1").all()
    assert "ix_read_queue" in " ".join(str(row) for row in plan)


def test_every_write_is_audited_with_before_and_after(clinic):
    db = clinic.project.database
    s = ReaderSession(db, clinic.ophthalmologists[0].id)
    image = first_image(s)
    start = count(db, AuditEvent)
    s.set_regions(image, "haemorrhage", {2})
    s.toggle_region(image, "haemorrhage", 3)
    s.mark_normal(image)
    s.set_diagnosis(image, "no DR")
    s.set_ungradable(image, False)
    s.set_comment(image, "ok")
    s.set_landmarks(image, (1, 1), (5, 1))
    s.mark_done(image)
    events = audit_events(db, entity="read")[-8:]
    assert count(db, AuditEvent) == start + 8
    assert [e.action for e in events] == ["set_regions", "set_regions", "mark_normal", "set_diagnosis",
                                         "set_ungradable", "set_comment", "set_landmarks", "mark_done"]
    assert all(e.reader_id == clinic.ophthalmologists[0].id and e.at is not None for e in events)
    assert events[1].before["regions"] == [2] and events[1].after["regions"] == [2, 3]
    assert events[2].before["regions"] == {"haemorrhage": [2, 3]} and events[2].after["normal"] is True


def test_an_error_mid_action_saves_neither_label_nor_audit(clinic, monkeypatch):
    db = clinic.project.database
    s = ReaderSession(db, clinic.ophthalmologists[0].id)
    image = first_image(s)
    labels, audits = count(db, RegionalLabel), count(db, AuditEvent)

    def failing_record(*args, **kwargs):
        raise RuntimeError("disk full while writing the audit event")

    monkeypatch.setattr(storage.reading, "record", failing_record)
    with pytest.raises(RuntimeError):
        s.set_regions(image, "haemorrhage", {1, 2})
    with pytest.raises(RuntimeError):
        s.mark_normal(image)
    assert (count(db, RegionalLabel), count(db, AuditEvent)) == (labels, audits)
    monkeypatch.undo()
    assert s.read(image).regions == {} and not s.read(image).normal


def test_a_reader_cannot_see_other_readers_labels(clinic):
    db = clinic.project.database
    a, b = clinic.ophthalmologists[0], clinic.ophthalmologists[1]
    with db.reading() as session:
        shared = session.scalar(
            select(Read.image_id).where(Read.reader_id == a.id)
            .where(Read.image_id.in_(select(Read.image_id).where(Read.reader_id == b.id))).limit(1)
        )
    ReaderSession(db, b.id).set_regions(shared, "drusen", {1})
    mine = ReaderSession(db, a.id)
    assert mine.read(shared).regions == {}  # own read only, though b labelled the same image
    with pytest.raises(AccessDeniedError, match="Blind reading"):
        mine.labels_of(b.id, shared)
    with pytest.raises(AccessDeniedError):
        ReviewSession(db, a.id)


def test_a_reader_cannot_open_or_label_images_outside_their_list(clinic):
    db = clinic.project.database
    s = ReaderSession(db, clinic.ophthalmologists[0].id)
    assigned = {image.id for image in s.queue()}
    other = next(i for i in clinic.images if i not in assigned)
    with pytest.raises(AccessDeniedError):
        s.image(other)
    with pytest.raises(AccessDeniedError):
        s.set_regions(other, "drusen", {1})


def test_reviewers_and_admins_can_see_every_readers_labels(clinic):
    db = clinic.project.database
    reader = ReaderSession(db, clinic.ophthalmologists[0].id)
    image = first_image(reader)
    reader.set_regions(image, "rnfl_defect", {6})
    for supervisor in (clinic.reviewer, clinic.admin):
        view = ReaderSession(db, supervisor.id)
        assert view.labels_of(clinic.ophthalmologists[0].id, image).regions == {"rnfl_defect": frozenset({6})}
        reads = ReviewSession(db, supervisor.id).reads_for(image)
        assert len(reads) == 3 and reads[clinic.ophthalmologists[0].id].regions["rnfl_defect"] == {6}


def test_model_landmarks_are_offered_to_the_reader(clinic):
    from storage.predictions import save_model_landmarks

    db = clinic.project.database
    s = ReaderSession(db, clinic.ophthalmologists[0].id)
    image = first_image(s)
    assert s.model_landmarks(image) is None
    save_model_landmarks(db, image, disc=(30, 20), fovea=(60, 21), model_version="landmarks-1")
    suggestion = s.model_landmarks(image)
    assert suggestion.source == "model" and suggestion.fovea == (60, 21)
    assert s.read(image).landmarks is None  # a suggestion is not the reader's answer
    assert s.set_landmarks(image, suggestion.disc, suggestion.fovea, source="model").landmarks.source == "model"


def test_restore_writes_a_whole_earlier_answer_as_one_audited_action(clinic):
    db = clinic.project.database
    s = ReaderSession(db, clinic.ophthalmologists[0].id)
    image = first_image(s)
    s.set_regions(image, "drusen", {1, 2})
    s.set_diagnosis(image, "mild NPDR")
    earlier = s.set_landmarks(image, (5, 5), (25, 6))
    s.mark_normal(image)
    s.set_comment(image, "changed my mind")
    s.clear_landmarks(image)
    events = count(db, AuditEvent)
    state = s.restore(image, earlier)
    assert state == earlier
    assert count(db, AuditEvent) == events + 1
    event = audit_events(db, "read")[-1]
    assert event.action == "restore" and event.before["normal"] and event.after["regions"] == {"drusen": [1, 2]}


def test_normal_can_be_withdrawn_and_landmarks_removed(clinic):
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id)
    image = first_image(s)
    assert s.set_normal(image, True).normal
    assert not s.set_normal(image, False).normal
    assert s.set_landmarks(image, (1, 2), (3, 4)).landmarks is not None
    assert s.clear_landmarks(image).landmarks is None


def test_suggestions_are_hidden_from_test_set_readers_while_the_project_says_so(clinic):
    from storage.predictions import save_prediction
    from storage.project import update_settings

    db = clinic.project.database
    s = ReaderSession(db, clinic.specialists[0].id)
    by_split = {image.split: image.id for image in s.queue()}
    for image in by_split.values():
        save_prediction(db, image, "regions", {"drusen": [1]}, "guided-1")
    assert s.suggestion(by_split["train"], "regions") == {"drusen": [1]}
    assert s.suggestion(by_split["test"], "regions") is None
    assert ReaderSession(db, clinic.admin.id).suggestion(by_split["test"], "regions") == {"drusen": [1]}
    update_settings(db, hide_suggestions_on_test=False)
    assert s.suggestion(by_split["test"], "regions") == {"drusen": [1]}


def test_model_landmarks_are_hidden_from_test_set_readers_while_the_project_says_so(clinic):
    from storage.predictions import save_model_landmarks
    from storage.project import update_settings

    db = clinic.project.database
    s = ReaderSession(db, clinic.specialists[0].id)
    by_split = {image.split: image.id for image in s.queue()}
    for image in by_split.values():
        save_model_landmarks(db, image, disc=(30, 20), fovea=(60, 21), model_version="landmarks-1")
    assert s.model_landmarks(by_split["train"]).fovea == (60, 21)
    assert s.model_landmarks(by_split["test"]) is None
    assert ReaderSession(db, clinic.admin.id).model_landmarks(by_split["test"]).fovea == (60, 21)
    update_settings(db, hide_suggestions_on_test=False)
    assert s.model_landmarks(by_split["test"]).disc == (30, 20)


def test_queue_status_gives_every_image_with_its_done_flag_in_one_query(clinic):
    from sqlalchemy import event

    db = clinic.project.database
    s = ReaderSession(db, clinic.ophthalmologists[0].id)
    queue = s.queue()
    s.mark_done(queue[1].id)
    selects = []

    def seen(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        status = s.queue_status()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert len(selects) == 1
    assert [record for record, _ in status] == queue
    assert [done for _, done in status] == [image.id == queue[1].id for image in queue]


def test_undo_from_a_second_workstation_never_erases_the_first_ones_save(clinic):
    """The same reader on two workstations: haemorrhage saved on 1, drusen on 2, undo on 1."""
    from storage.errors import StaleAnswerError
    from storage.project import open_project

    reader = clinic.ophthalmologists[0].id
    other = open_project(clinic.project.root, database_url=None if clinic.project.database.engine.dialect.name
                         == "sqlite" else clinic.project.database.engine.url.render_as_string(hide_password=False))
    try:
        one, two = ReaderSession(clinic.project.database, reader), ReaderSession(other.database, reader)
        image = first_image(one)
        empty = one.read(image)
        saved_on_one = one.set_regions(image, "haemorrhage", {2})
        both = two.set_regions(image, "drusen", {5})
        events = count(clinic.project.database, AuditEvent)
        with pytest.raises(StaleAnswerError, match="another workstation"):
            one.restore(image, empty, expected=saved_on_one)  # workstation 1's undo
        assert one.read(image) == both and count(clinic.project.database, AuditEvent) == events
        # workstation 2 still undoes its own save: it is what is stored
        assert two.restore(image, saved_on_one, expected=both).regions == {"haemorrhage": frozenset({2})}
    finally:
        other.close()


@pytest.mark.sqlite_only
def test_a_save_waits_out_a_busy_database_with_one_retry_and_takes_the_lock_when_freed(clinic, backend):
    """Another program holds the write lock a little longer than the busy timeout: the save is
    tried once more instead of failing, and it goes in within moments of the lock's release."""
    import sqlite3
    import threading
    import time

    from storage.database import DATABASE_FILENAME, Database, sqlite_url

    root = clinic.project.root
    impatient = Database.open(sqlite_url(root / DATABASE_FILENAME), root, busy_timeout_ms=300)
    try:
        s = ReaderSession(impatient, clinic.ophthalmologists[0].id)
        image = first_image(s)
        other = sqlite3.connect(root / DATABASE_FILENAME, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        released = []
        timer = threading.Timer(0.45, lambda: (other.execute("ROLLBACK"), released.append(time.monotonic())))
        timer.start()
        try:
            state = s.set_regions(image, "drusen", {4})
            saved = time.monotonic()
        finally:
            timer.join()
            other.close()
        assert state.regions == {"drusen": frozenset({4})}
        assert saved - released[0] < 0.3  # polled: not one of SQLite's 100 ms sleeps behind
    finally:
        impatient.dispose()


@pytest.mark.sqlite_only
def test_a_session_with_a_short_lock_wait_gives_up_on_a_held_lock_at_once_and_saves_once_it_is_free(
        clinic, backend):
    """The workstation's saves: another program holds the write lock, so the save says
    DatabaseLockedError after its short wait (tried once, nothing written) instead of holding the
    window for the busy timeout twice; the same save goes in once the lock is let go."""
    import sqlite3

    from storage.database import DATABASE_FILENAME
    from storage.errors import DatabaseLockedError

    root = clinic.project.root
    s = ReaderSession(clinic.project.database, clinic.ophthalmologists[0].id, lock_wait_ms=20)
    image = first_image(s)
    tries = []
    act_once = s._act_once
    s._act_once = lambda *args: (tries.append(1), act_once(*args))[1]   # type: ignore[method-assign]
    other = sqlite3.connect(root / DATABASE_FILENAME, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseLockedError, match="busy in another program"):
            s.set_regions(image, "drusen", {4})
        assert tries == [1]
        assert s.read(image).regions == {}   # reads go on under another program's write lock
        other.execute("ROLLBACK")
        assert s.set_regions(image, "drusen", {4}).regions == {"drusen": frozenset({4})}
    finally:
        other.close()
