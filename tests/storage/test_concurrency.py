"""Several workstations on one project at once: no lost, duplicated or failed saves.

Each "workstation" is the project opened again (its own engine, pool and sessions), used from its
own thread, as separate computers would; a barrier starts them together. Runs on SQLite (one
writer at a time) and on PostgreSQL (concurrent writers: storage takes row and advisory locks).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

import storage.assignment
import storage.images
import storage.predictions
import storage.project
import storage.readers
from storage.assignment import assign_readers
from storage.audit import audit_events, verify
from storage.errors import InvalidRequestError
from storage.images import NewImage, add_images, list_images
from storage.predictions import activate_model, list_models, register_model
from storage.project import ProjectHandle, create_project, open_project
from storage.readers import Role, list_readers
from storage.reading import ReaderSession
from storage.review import iter_all_reads
from storage.schema import AuditEvent, DiagnosisLabel, Landmark, Read, RegionalLabel
from tests.conftest import add_reader_as_admin, make_admin
from tests.storage.conftest import add_fake_images, fake_sha

FINDINGS = ("haemorrhage", "hard_exudate", "drusen", "membrane")
DIAGNOSES = ("no DR", "mild NPDR", "moderate NPDR")
ACTION_DELAY_S = 0.05


def run_together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run each job in its own thread, all released at once; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    failures: list[BaseException] = []

    def run(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread below
            failures.append(error)

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a workstation hung"
    if failures:
        raise failures[0]
    return results


@pytest.fixture
def workstations(tmp_project, database_url):
    """``open(n)`` -> n more handles on the test's project, each with its own engine."""
    opened: list[ProjectHandle] = []

    def open_(n: int) -> list[ProjectHandle]:
        handles = [open_project(tmp_project.root, database_url) for _ in range(n)]
        opened.extend(handles)
        return handles

    yield open_
    for handle in opened:
        handle.close()


@pytest.fixture
def slow_actions(monkeypatch):
    """``slow_down(module, ...)``: the module's actions wait a moment between their checks and
    their commit (as over a slow network), so two workstations' actions overlap every time
    rather than only when the threads happen to interleave."""
    def slow_down(*modules) -> None:
        for module in modules:
            def slow_record(*args, _record=module.record, **kwargs):
                time.sleep(ACTION_DELAY_S)
                return _record(*args, **kwargs)

            monkeypatch.setattr(module, "record", slow_record)

    return slow_down


def count(db, column) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count(column)))


def three_readers_on_every_image(project: ProjectHandle, images: int) -> tuple[list[int], list[int]]:
    readers = [add_reader_as_admin(project.database, f"Dr {i}", Role.OPHTHALMOLOGIST).id for i in range(3)]
    image_ids = add_fake_images(project, train=images)
    assign_readers(project.database)
    return readers, image_ids


def expected_regions(reader_index: int, image_id: int) -> frozenset[int]:
    return frozenset({1 + (image_id + reader_index) % 8, 1 + (image_id * 3 + reader_index) % 8})


def test_three_readers_labelling_the_same_images_at_once_lose_nothing(tmp_project, workstations):
    readers, images = three_readers_on_every_image(tmp_project, images=8)
    stations = workstations(3)

    def read_everything(index: int) -> int:
        session = ReaderSession(stations[index].database, readers[index])
        saved = 0
        while (image := session.next_unfinished()) is not None:
            session.set_regions(image.id, "haemorrhage", expected_regions(index, image.id))
            session.toggle_region(image.id, "drusen", 1 + index)
            session.set_diagnosis(image.id, DIAGNOSES[index])
            session.set_landmarks(image.id, disc=(10.0 + index, 20.0), fovea=(40.0, 22.0 + index))
            session.set_comment(image.id, f"read by {index}")
            session.mark_done(image.id)
            saved += 6
        return saved

    saved = run_together(*(lambda i=i: read_everything(i) for i in range(3)))
    assert saved == [6 * len(images)] * 3
    db = tmp_project.database
    states = {(image, reader): state for image, reader, state in iter_all_reads(db)}
    assert len(states) == 3 * len(images)
    for index, reader in enumerate(readers):
        for image in images:
            state = states[image, reader]
            assert state.done and state.comment == f"read by {index}" and state.diagnosis == DIAGNOSES[index]
            assert state.regions == {"haemorrhage": expected_regions(index, image),
                                     "drusen": frozenset({1 + index})}
            assert state.landmarks.disc == (10.0 + index, 20.0)
    # Exactly one row per save target: nothing duplicated, nothing lost.
    assert count(db, RegionalLabel.id) == 2 * 3 * len(images)
    assert count(db, DiagnosisLabel.id) == count(db, Landmark.id) == 3 * len(images)
    read_events = Counter(event.reader_id for event in audit_events(db, "read"))
    assert read_events == {reader: 6 * len(images) for reader in readers}


def test_one_reader_on_two_workstations_keeps_every_region_of_both(tmp_project, workstations):
    """The same reader signed in twice, clicking different regions of the same findings: each
    click reads the stored regions and adds its own, so no click may overwrite another."""
    readers, images = three_readers_on_every_image(tmp_project, images=3)
    first, second = workstations(2)

    def click(station: ProjectHandle, regions: range) -> None:
        session = ReaderSession(station.database, readers[0])
        for image in images:
            for code in FINDINGS:
                for region in regions:
                    session.toggle_region(image, code, region)
                session.set_diagnosis(image, DIAGNOSES[regions[0] % 3])
                session.set_landmarks(image, disc=(regions[0], 1.0), fovea=(30.0, 2.0))

    run_together(lambda: click(first, range(1, 5)), lambda: click(second, range(5, 9)))
    session = ReaderSession(tmp_project.database, readers[0])
    for image in images:
        state = session.read(image)
        assert state.regions == {code: frozenset(range(1, 9)) for code in FINDINGS}
        assert state.diagnosis in DIAGNOSES and state.landmarks.disc in {(1, 1.0), (5, 1.0)}
    db = tmp_project.database
    assert count(db, RegionalLabel.id) == len(images) * len(FINDINGS)
    assert count(db, DiagnosisLabel.id) == count(db, Landmark.id) == len(images)
    saves = [e for e in audit_events(db, "read") if e.action == "set_regions"]
    assert len(saves) == 2 * len(images) * len(FINDINGS) * 4
    # The audit trail is one chain per label: each click found what the click before it saved,
    # whichever workstation that was.
    chains: dict[tuple[int, str], list] = {}
    for event in saves:
        chains.setdefault((event.entity_id, event.after["finding"]), []).append(event)
    for chain in chains.values():
        assert chain[0].before["regions"] == [] and chain[-1].after["regions"] == list(range(1, 9))
        assert all(later.before["regions"] == earlier.after["regions"] for earlier, later in zip(chain, chain[1:]))
    assert verify(db).intact  # one hash chain, whichever workstation appended


def test_assigning_on_two_workstations_at_once_gives_each_image_three_readers(
    tmp_project, workstations, slow_actions
):
    db = tmp_project.database
    readers = [add_reader_as_admin(db, f"Dr {i}", Role.OPHTHALMOLOGIST).id for i in range(5)]
    images = add_fake_images(tmp_project, train=30)
    first, second = workstations(2)
    slow_actions(storage.assignment)

    summaries = run_together(lambda: assign_readers(first.database, seed=1),
                             lambda: assign_readers(second.database, seed=2))
    assert sorted(s.reads_added for s in summaries) == [0, 3 * len(images)]
    with db.reading() as session:
        reads = session.execute(select(Read.image_id, Read.reader_id, Read.position)).all()
    assert len(reads) == 3 * len(images)
    per_image = Counter(image for image, _, _ in reads)
    assert set(per_image) == set(images) and set(per_image.values()) == {3}
    for reader in readers:  # every queue numbered 0..n-1, no gaps, no repeats
        positions = sorted(position for _, r, position in reads if r == reader)
        assert positions == list(range(len(positions)))
    assert [e.after["reads_added"] for e in audit_events(db, "assignment")] == [3 * len(images), 0]


def test_importing_and_assigning_while_readers_label(tmp_project, workstations):
    """The administrator adds photographs and assigns them while the readers keep reading."""
    readers, images = three_readers_on_every_image(tmp_project, images=6)
    admin, *stations = workstations(4)
    late = [NewImage(tmp_project.root / f"late{i}.jpg", fake_sha(500 + i), 64, 48) for i in range(12)]

    def administer() -> None:
        for batch in range(0, len(late), 3):
            add_images(admin.database, late[batch:batch + 3])
            assign_readers(admin.database)

    def read(index: int) -> int:
        session = ReaderSession(stations[index].database, readers[index])
        done = 0
        while (image := session.next_unfinished()) is not None:
            session.set_regions(image.id, "membrane", {1 + index})
            session.mark_done(image.id)
            done += 1
        return done

    finished = run_together(administer, *(lambda i=i: read(i) for i in range(3)))[1:]
    db = tmp_project.database
    assert len(list_images(db)) == len(images) + len(late)
    with db.reading() as session:
        per_image = Counter(session.scalars(select(Read.image_id)))
    assert set(per_image.values()) == {3} and len(per_image) == len(images) + len(late)
    assert all(done >= len(images) for done in finished)
    done_reads = [(reader, state) for _, reader, state in iter_all_reads(db) if state.done]
    assert Counter(reader for reader, _ in done_reads) == dict(zip(readers, finished))
    for reader, state in done_reads:  # each finished read holds its own reader's label, intact
        assert state.regions == {"membrane": frozenset({1 + readers.index(reader)})}


def test_the_same_photographs_imported_on_two_workstations_are_kept_once(
    tmp_project, workstations, slow_actions
):
    photos = [NewImage(tmp_project.root / f"p{i}.jpg", fake_sha(i + 1), 64, 48) for i in range(4)]
    first, second = workstations(2)
    slow_actions(storage.images)

    def import_one_by_one(station: ProjectHandle) -> list[int | None]:
        return [add_images(station.database, [photo])[0] for photo in photos]

    ids = run_together(lambda: import_one_by_one(first), lambda: import_one_by_one(second))
    added = [i for i in ids[0] + ids[1] if i is not None]
    stored = list_images(tmp_project.database)
    assert len(added) == len(set(added)) == len(stored) == len(photos)
    assert {image.sha256 for image in stored} == {photo.sha256 for photo in photos}
    assert len(audit_events(tmp_project.database, "image")) == len(photos)


def test_two_administrators_adding_the_same_reader_get_one_reader_and_a_clear_refusal(
    tmp_project, workstations, slow_actions
):
    make_admin(tmp_project.database)
    stations = workstations(2)
    slow_actions(storage.readers)
    outcomes = []

    def add(station: ProjectHandle) -> None:
        try:
            outcomes.append(add_reader_as_admin(station.database, "Dr Same", Role.RETINA_SPECIALIST).name)
        except InvalidRequestError as refusal:
            outcomes.append(str(refusal))

    run_together(*(lambda s=s: add(s) for s in stations))
    assert sorted(outcomes) == sorted(["Dr Same", "A reader called 'Dr Same' exists already; choose another name."])
    assert [r.name for r in list_readers(tmp_project.database)] == ["Admin", "Dr Same"]


def test_models_registered_and_activated_at_once_leave_one_active_per_network(
    tmp_project, workstations, slow_actions
):
    stations = workstations(3)
    slow_actions(storage.predictions)

    def train(index: int) -> list[int]:
        db = stations[index].database
        return [register_model(db, f"vessels {index}.{n}", "vessels", {"dice": 0.8}, {}, {}, f"m/{index}/{n}",
                               active=True) for n in range(2)]

    def active_models() -> list[tuple[str, int]]:
        return [(m.network, m.id) for m in list_models(tmp_project.database) if m.active]

    made = run_together(*(lambda i=i: train(i) for i in range(3)))
    register_model(tmp_project.database, "lesions", "lesions", {}, {}, {}, "m/lesions", active=True)
    assert len(list_models(tmp_project.database)) == 3 * 2 + 1
    assert sorted(network for network, _ in active_models()) == ["lesions", "vessels"]
    run_together(*(lambda i=i: activate_model(stations[i].database, made[i][0]) for i in range(3)))
    vessels = [model for network, model in active_models() if network == "vessels"]
    assert len(vessels) == 1 and vessels[0] in {ids[0] for ids in made}


@pytest.mark.postgresql_only  # a SQLite project is its folder's file: two folders, two databases
def test_two_projects_created_in_one_database_at_once_give_one_project(
    tmp_path, new_database_url, slow_actions
):
    url = new_database_url()
    slow_actions(storage.project)
    outcomes = []

    def create(name: str) -> None:
        try:
            with create_project(tmp_path / name, name=name, database_url=url) as project:
                outcomes.append(project.settings().name)
        except InvalidRequestError as refusal:
            outcomes.append(str(refusal))

    run_together(lambda: create("Clinic A"), lambda: create("Clinic B"))
    assert sum(outcome.startswith("Clinic") for outcome in outcomes) == 1
    assert any("already holds an Octant project" in outcome for outcome in outcomes)
    with open_project(tmp_path / "any", url) as project:
        assert project.settings().name in {"Clinic A", "Clinic B"}
        assert count(project.database, AuditEvent.id) == 1


def test_a_reading_session_keeps_one_snapshot_while_others_save(clinic, workstations):
    """What a reading session shows is consistent: saves committed meanwhile appear in the next one."""
    (other,) = workstations(1)
    reader = clinic.ophthalmologists[0].id
    image = ReaderSession(clinic.project.database, reader).next_unfinished().id
    db = clinic.project.database
    with db.reading() as session:
        before = session.scalar(select(func.count(RegionalLabel.id)))
        ReaderSession(other.database, reader).set_regions(image, "drusen", {2})
        assert session.scalar(select(func.count(RegionalLabel.id))) == before
    assert count(db, RegionalLabel.id) == before + 1
