"""Clicks a workstation could not save before it was stopped: written to the project's recovery
file and saved at the reader's next sign-in, in order, through the same checks as any click."""
from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from storage.click_recovery import (
    ReaderStep,
    UnsavedClick,
    recover_unsaved_clicks,
    recovery_files,
    write_recovery_file,
)
from storage.database import DATABASE_FILENAME
from storage.errors import InvalidRequestError
from storage.reading import ReaderSession


def _reader(clinic):
    return clinic.ophthalmologists[0]


def _own_image(clinic) -> int:
    return ReaderSession(clinic.project.database, _reader(clinic).id).queue()[0].id


def test_recovered_clicks_are_saved_in_order_as_if_given_then(clinic):
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    session = ReaderSession(db, reader.id)
    before = session.set_regions(image, "haemorrhage", {1})
    clicks = [UnsavedClick("Haemorrhage: region 5", image, ReaderStep("toggle_region", dict(finding_code="haemorrhage",
                                                                                             region=5))),
              UnsavedClick("Landmarks", image, ReaderStep("set_landmarks", dict(disc=(10.5, 20.0), fovea=(40.0, 22.25),
                                                                                 source="manual"))),
              UnsavedClick("Diagnosis: mild NPDR", image, ReaderStep("set_diagnosis", dict(diagnosis="mild NPDR"))),
              UnsavedClick("Done", image, ReaderStep("mark_done", dict(done=True)))]
    path = write_recovery_file(root, reader.id, reader.name, clicks)
    assert recovery_files(root, reader.id) == [path] and recovery_files(root, clinic.ophthalmologists[1].id) == []
    outcome = recover_unsaved_clicks(db, root, reader.id)
    assert (outcome.saved, outcome.refused, outcome.waiting) == (4, [], 0)
    assert outcome.sentence().startswith("4 clicks not saved when Octant was stopped (")
    assert outcome.sentence().endswith(") are saved now.")
    after = session.read(image)
    assert after.regions == {"haemorrhage": {1, 5}} and after.diagnosis == "mild NPDR" and after.done
    assert (after.landmarks.disc, after.landmarks.fovea) == ((10.5, 20.0), (40.0, 22.25))
    assert not path.exists() and recover_unsaved_clicks(db, root, reader.id).sentence() == ""
    assert before.regions == {"haemorrhage": {1}}


def test_a_recovered_undo_is_refused_when_the_answer_changed_meanwhile(clinic):
    # The undo's compare-and-set comes through the file: it never erases a later save.
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    session = ReaderSession(db, reader.id)
    empty = session.read(image)
    marked = session.set_regions(image, "haemorrhage", {2})
    undo = UnsavedClick("Undone: Haemorrhage: region 2", image,
                        ReaderStep("restore", dict(target=empty, expected=marked)))
    write_recovery_file(root, reader.id, reader.name, [undo, undo])
    session.set_regions(image, "haemorrhage", {2, 3})      # another workstation, before the next sign-in
    outcome = recover_unsaved_clicks(db, root, reader.id)
    assert outcome.saved == 0 and len(outcome.refused) == 2
    assert outcome.sentence().startswith("Of 2 clicks not saved when Octant was stopped")
    assert "0 are saved now and 2 refused (Undone: Haemorrhage: region 2, image" in outcome.sentence()
    assert session.read(image).regions == {"haemorrhage": {2, 3}} and recovery_files(root, reader.id) == []


def test_an_undo_survives_the_file_and_is_saved_when_nothing_changed(clinic):
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    session = ReaderSession(db, reader.id)
    empty = session.read(image)
    marked = session.set_landmarks(image, disc=(1.0, 2.0), fovea=(3.0, 4.0))
    marked = session.set_regions(image, "drusen", {4, 6})
    write_recovery_file(root, reader.id, reader.name,
                        [UnsavedClick("Undone", image, ReaderStep("restore", dict(target=empty, expected=marked)))])
    assert recover_unsaved_clicks(db, root, reader.id).sentence().startswith("1 click not saved")
    assert session.read(image).regions == {} and session.read(image).landmarks is None


@pytest.mark.sqlite_only
def test_a_locked_database_keeps_the_clicks_left_for_the_next_sign_in(clinic):
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    clicks = [UnsavedClick(f"Haemorrhage: region {r}", image,
                           ReaderStep("toggle_region", dict(finding_code="haemorrhage", region=r))) for r in (1, 2)]
    path = write_recovery_file(root, reader.id, reader.name, clicks)
    other_program = sqlite3.connect(root / DATABASE_FILENAME, isolation_level=None)
    try:
        other_program.execute("BEGIN IMMEDIATE")
        outcome = recover_unsaved_clicks(db, root, reader.id, lock_wait_ms=50)
        other_program.execute("ROLLBACK")
    finally:
        other_program.close()
    assert (outcome.saved, outcome.waiting) == (0, 2) and path.exists()
    assert "2 clicks not saved when Octant was stopped" in outcome.sentence()
    assert "still waiting" in outcome.sentence() and "next sign-in" in outcome.sentence()
    assert [c["label"] for c in json.loads(path.read_text())["clicks"]] == ["Haemorrhage: region 1",
                                                                            "Haemorrhage: region 2"]
    assert recover_unsaved_clicks(db, root, reader.id).saved == 2 and not path.exists()
    assert ReaderSession(db, reader.id).read(image).regions == {"haemorrhage": {1, 2}}


def test_a_file_that_is_not_octants_is_kept_and_nothing_in_it_is_run(clinic):
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    path = write_recovery_file(root, reader.id, reader.name, [
        UnsavedClick("Normal", image, ReaderStep("mark_normal"))])
    document = json.loads(path.read_text())
    document["clicks"][0]["step"]["method"] = "delete_everything"
    path.write_text(json.dumps(document))
    outcome = recover_unsaved_clicks(db, root, reader.id)
    assert outcome.unreadable == [path] and path.exists() and outcome.saved == 0
    assert outcome.sentence() == (f"A recovery file of clicks not saved when Octant was stopped could not be "
                                  f"read; it is kept in {path.parent} for support.")
    assert not ReaderSession(db, reader.id).read(image).normal
    with pytest.raises(InvalidRequestError):
        ReaderStep("delete_everything")


def _toggles(image: int, *regions: int) -> list[UnsavedClick]:
    return [UnsavedClick(f"Haemorrhage: region {r}", image,
                         ReaderStep("toggle_region", dict(finding_code="haemorrhage", region=r))) for r in regions]


def test_two_sign_ins_at_once_save_each_recovered_click_once(clinic, monkeypatch):
    # The same reader signs in on two workstations together: one of them saves the file, the other
    # leaves it (a toggle saved twice would take the region back out).
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    path = write_recovery_file(root, reader.id, reader.name, _toggles(image, 1, 2))
    yesterday = time.time() - 86400                                      # the logout was yesterday
    os.utime(path, (yesterday, yesterday))
    apply, other_workstation = ReaderStep.apply, []

    def meanwhile_the_other_sign_in(step, session, image_id):
        if not other_workstation:
            other_workstation.append(None)
            other_workstation[0] = recover_unsaved_clicks(db, root, reader.id)
        return apply(step, session, image_id)

    monkeypatch.setattr(ReaderStep, "apply", meanwhile_the_other_sign_in)
    first = recover_unsaved_clicks(db, root, reader.id)
    assert (first.saved, other_workstation[0].saved, other_workstation[0].sentence()) == (2, 0, "")
    assert ReaderSession(db, reader.id).read(image).regions == {"haemorrhage": {1, 2}}
    assert not any((root / "recovery").iterdir())


class Crash(BaseException):
    """The process ends here (a power cut, kill -9), between two clicks of a recovery file."""


def test_a_sign_in_stopped_midway_leaves_only_the_clicks_it_had_not_saved(clinic, monkeypatch):
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    write_recovery_file(root, reader.id, reader.name, _toggles(image, 1, 2, 3))
    apply, applied = ReaderStep.apply, []

    def stopped_after_two(step, session, image_id):
        if len(applied) == 2:
            raise Crash
        applied.append(step)
        return apply(step, session, image_id)

    monkeypatch.setattr(ReaderStep, "apply", stopped_after_two)
    with pytest.raises(Crash):
        recover_unsaved_clicks(db, root, reader.id)
    monkeypatch.setattr(ReaderStep, "apply", apply)
    assert ReaderSession(db, reader.id).read(image).regions == {"haemorrhage": {1, 2}}
    assert recover_unsaved_clicks(db, root, reader.id).saved == 0        # a sign-in may still be saving it
    [left] = (root / "recovery").iterdir()
    a_while_ago = time.time() - 120
    os.utime(left, (a_while_ago, a_while_ago))                           # nobody has touched it since
    outcome = recover_unsaved_clicks(db, root, reader.id)
    assert outcome.saved == 1 and outcome.sentence().startswith("1 click not saved when Octant was stopped")
    assert ReaderSession(db, reader.id).read(image).regions == {"haemorrhage": {1, 2, 3}}
    assert not any((root / "recovery").iterdir())


def test_arguments_a_click_cannot_take_make_the_file_unreadable_not_a_traceback(clinic):
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    path = write_recovery_file(root, reader.id, reader.name, _toggles(image, 4))
    document = json.loads(path.read_text())
    document["clicks"][0]["step"]["args"]["everything"] = True
    path.write_text(json.dumps(document))
    outcome = recover_unsaved_clicks(db, root, reader.id)
    assert outcome.unreadable == [path] and path.exists() and outcome.saved == 0
    assert ReaderSession(db, reader.id).read(image).regions == {}


def test_a_file_written_for_another_reader_of_the_same_id_is_kept_not_saved(clinic):
    # A restore of an older backup can give a reader added later's id to the next reader added.
    db, root, reader, image = clinic.project.database, clinic.project.root, _reader(clinic), _own_image(clinic)
    path = write_recovery_file(root, reader.id, "Dr Gone", _toggles(image, 5))
    outcome = recover_unsaved_clicks(db, root, reader.id)
    assert outcome.unreadable == [path] and path.exists() and outcome.saved == 0
    assert ReaderSession(db, reader.id).read(image).regions == {}
