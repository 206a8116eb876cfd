"""import-labels: Octant's JSON export read back reproduces every answer, through the audited save."""
from __future__ import annotations

import json

import numpy as np
import pytest

from annotate.services.export import export_labels
from annotate.services.label_import import import_labels
from annotate.services.label_shapes import uncompressed_rle
from storage.adjudication import record_adjudication
from storage.assignment import assign_readers
from storage.audit import audit_events, state_digest, verify
from storage.errors import AccessDeniedError, InvalidRequestError
from storage.images import NewImage, add_images
from storage.labels import state_json
from storage.project import create_project
from storage.readers import Role, add_reader, find_reader
from storage.reading import ReaderSession
from storage.review import ReviewSession
from tests.conftest import ADMIN_PASSPHRASE, make_admin

SHAS = [f"{i + 1:064x}" for i in range(3)]


def photos(project):
    return add_images(project.database, [NewImage(project.root / f"eye{i}.png", sha, 400, 300, "left", "train",
                                                  fov=(200.0, 150.0, 140.0)) for i, sha in enumerate(SHAS)])


@pytest.fixture()
def source(tmp_project):
    """Every kind of answer: regions, normal, ungradable, diagnosis, comment, landmarks (manual and
    model), an unfinished read, and a reviewer's adjudication."""
    db = tmp_project.database
    admin = make_admin(db)
    readers = [add_reader(db, f"Dr {name}", role, acting_reader_id=admin.id) for name, role in
               (("Ahn", Role.OPHTHALMOLOGIST), ("Baek", Role.RETINA_SPECIALIST), ("Cho", Role.OPHTHALMOLOGIST))]
    reviewer = add_reader(db, "Dr Review", Role.REVIEWER, "246810", acting_reader_id=admin.id)
    first, second, third = photos(tmp_project)
    assign_readers(db)
    a, b, c = (ReaderSession(db, r.id) for r in readers)
    a.set_landmarks(first, (270.0, 150.0), (170.5, 155.25))
    a.set_regions(first, "haemorrhage", {1, 5})
    a.set_diagnosis(first, "mild NPDR")
    a.set_comment(first, "small, near the arcade")
    a.mark_done(first)
    b.set_landmarks(first, (271.0, 149.0), (171.0, 156.0), source="model")
    b.set_regions(first, "haemorrhage", {5, 6})
    b.set_regions(first, "drusen", {1})
    b.mark_done(first)
    c.mark_normal(first)
    c.mark_done(first)
    a.set_ungradable(second)
    a.mark_done(second)
    b.mark_normal(second)
    b.mark_done(second)
    c.set_regions(second, "haemorrhage", {2})                      # not finished
    record_adjudication(db, reviewer.id, first, "drusen", True, {1, 4}, reason="seen on the red-free view")
    return tmp_project


def exported(project, tmp_path, name):
    export_labels(project, tmp_path / name, "json", find_reader(project.database, "Admin").id)
    return json.loads((tmp_path / name).read_text(encoding="utf-8"))


def comparable(document):
    """Everything the labels say, keyed by photo and reader name (ids differ between projects)."""
    out = {}
    for image in document["images"]:
        reads = sorted((json.dumps({k: v for k, v in r.items() if k != "reader_id"}, sort_keys=True))
                       for r in image["reads"])
        decided = [{k: v for k, v in a.items() if k != "decided_at"} for a in image["adjudications"]]
        out[image["sha256"]] = dict(reads=reads, consensus=image["consensus"], final=image["final"],
                                    adjudications=decided, laterality=image["laterality"])
    return out


@pytest.fixture()
def empty(tmp_path):
    project = create_project(tmp_path / "empty", name="Second clinic")
    admin = make_admin(project.database)
    photos(project)
    yield project, admin
    project.close()


def test_export_then_import_into_an_empty_project_reproduces_every_answer(source, empty, tmp_path):
    before = exported(source, tmp_path, "a.json")
    project, admin = empty
    report = import_labels(project, tmp_path / "a.json", admin.id)
    assert (report.written, report.unchanged) == (6, 3)     # three reads assigned but not begun
    assert report.adjudications == 1 and not report.missing
    assert set(report.readers_added) == {"Dr Ahn", "Dr Baek", "Dr Cho", "Dr Review"}
    after = exported(project, tmp_path, "b.json")
    assert comparable(after) == comparable(before)
    # Written through the readers' own save: one "import" event per read with the stored state's digest.
    review = ReviewSession(project.database, admin.id)
    events = [e for e in audit_events(project.database, "read") if e.action == "import"]
    assert len(events) == 6
    stored = {image_id: review.reads_for(image_id) for image_id in (1, 2, 3)}
    digests = {state_digest(state_json(state)) for reads in stored.values() for state in reads.values()}
    assert {e.after["state_sha256"] for e in events} <= digests
    assert verify(project.database).problems == []


def test_importing_the_same_file_again_changes_nothing(source, empty, tmp_path):
    exported(source, tmp_path, "a.json")
    project, admin = empty
    import_labels(project, tmp_path / "a.json", admin.id)
    count = len(audit_events(project.database))
    again = import_labels(project, tmp_path / "a.json", admin.id)
    assert (again.written, again.unchanged, again.adjudications, again.readers_added) == (0, 9, 0, [])
    assert len(audit_events(project.database)) == count


def test_only_an_admin_may_import(source, empty, tmp_path):
    exported(source, tmp_path, "a.json")
    project, admin = empty
    reviewer = add_reader(project.database, "Dr R", Role.REVIEWER, "246810", acting_reader_id=admin.id)
    with pytest.raises(AccessDeniedError, match="(?i)only an admin"):
        import_labels(project, tmp_path / "a.json", reviewer.id)


@pytest.mark.parametrize("damage, phrase", [
    (lambda d: d["images"][0]["reads"][0]["findings"].update(haemorrhage=[9]), "codes 1 to 8"),
    (lambda d: d["images"][1]["reads"][0].update(diagnosis="plague"), "no diagnosis 'plague'"),
    (lambda d: d["images"][2]["reads"][0]["findings"].update(unicorn=[1]), "no finding 'unicorn'"),
    (lambda d: d["images"][0]["reads"][0].update(landmarks={"disc": [1], "fovea": [2, 3]}), r"\[x, y\]"),
    (lambda d: d["images"][0]["reads"][0].update(role="wizard"), "unknown role"),
    (lambda d: d["images"][0].update(sha256="abc"), "sha256"),
    (lambda d: d.update(version=99), "newer Octant"),
])
def test_a_bad_value_stops_the_import_before_anything_is_written(source, empty, tmp_path, damage, phrase):
    document = exported(source, tmp_path, "a.json")
    document["images"].sort(key=lambda image: -len(image["reads"]))
    damage(document)
    (tmp_path / "bad.json").write_text(json.dumps(document))
    project, admin = empty
    count = len(audit_events(project.database))
    with pytest.raises(InvalidRequestError, match=phrase):
        import_labels(project, tmp_path / "bad.json", admin.id)
    assert len(audit_events(project.database)) == count


def test_non_label_files_are_refused_with_one_sentence(source, empty, tmp_path):
    project, admin = empty
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(InvalidRequestError, match="not a readable JSON"):
        import_labels(project, tmp_path / "junk.json", admin.id)


def test_the_command_names_photos_missing_from_the_project(source, tmp_path, capsys, monkeypatch):
    from main import main

    monkeypatch.setenv("OCTANT_CREDENTIAL", ADMIN_PASSPHRASE)   # --as Admin signs in with it
    exported(source, tmp_path, "a.json")
    target = create_project(tmp_path / "other", name="Other")
    make_admin(target.database)
    add_images(target.database, [NewImage(target.root / "eye0.png", SHAS[0], 400, 300, "left", "train")])
    target.close()
    code = main(["import-labels", str(tmp_path / "a.json"), "--project", str(tmp_path / "other"), "--as", "Admin"])
    out = capsys.readouterr().out
    assert code == 1 and "2 photos are not in this project" in out and "Imported 3 reads" in out


def test_octants_coco_export_imports_as_one_readers_answers(source, empty, tmp_path):
    admin = find_reader(source.database, "Admin").id
    export_labels(source, tmp_path / "coco.json", "coco", admin)
    final = {image["sha256"]: image["final"] for image in exported(source, tmp_path, "a.json")["images"]}
    project, admin = empty
    report = import_labels(project, tmp_path / "coco.json", admin.id, reader="Dr Coco")
    assert report.readers_added == ["Dr Coco"] and not report.missing and report.undrawn == 0
    coco_reader = find_reader(project.database, "Dr Coco").id
    reads = {image_id: state for image_id, state in
             ((i, ReviewSession(project.database, admin.id).reads_for(i).get(coco_reader)) for i in (1, 2, 3))}
    assert any(final[sha] is None for sha in SHAS)   # a photo not read yet
    for number, sha in enumerate(SHAS, start=1):
        state = reads[number]
        if final[sha] is None:   # not in the COCO file, so not turned into a "normal" answer
            assert state is None
            continue
        present = {code: f["regions"] for code, f in final[sha]["findings"].items() if f["state"] == "present"}
        assert {code: sorted(r) for code, r in state.regions.items()} == present
        assert state.done and state.normal == (not present)
    assert reads[1].landmarks is not None          # placed as the annotation was drawn
    assert verify(project.database).problems == []


def test_foreign_coco_polygons_and_rle_are_placed_in_the_regions_they_cover(empty, tmp_path):
    from annotate.geometry import region_at

    project, admin = empty
    disc, fovea = (270.0, 150.0), (170.0, 155.0)
    square = [100.0, 100.0, 110.0, 100.0, 110.0, 110.0, 100.0, 110.0]
    mask = np.zeros((300, 400), bool)
    mask[200:206, 300:306] = True
    runs = uncompressed_rle(mask)["counts"]
    document = {
        "images": [{"id": 7, "file_name": "eye0.png", "width": 400, "height": 300},
                   {"id": 8, "file_name": "elsewhere/eye1.png", "width": 400, "height": 300},
                   {"id": 9, "file_name": "not-here.png", "width": 400, "height": 300}],
        "categories": [{"id": 3, "name": "haemorrhage"}, {"id": 4, "name": "drusen"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "segmentation": [square],
             "landmarks": {"disc": list(disc), "fovea": list(fovea)}},
            {"id": 2, "image_id": 7, "category_id": 4, "segmentation": {"size": [300, 400], "counts": runs},
             "landmarks": {"disc": list(disc), "fovea": list(fovea)}},
            {"id": 3, "image_id": 8, "category_id": 3, "segmentation": [square]},   # no landmarks anywhere
        ],
    }
    (tmp_path / "foreign.json").write_text(json.dumps(document))
    report = import_labels(project, tmp_path / "foreign.json", admin.id, reader="Dr Elsewhere")
    assert report.missing == ["not-here.png"] and report.undrawn == 1
    reader = find_reader(project.database, "Dr Elsewhere").id
    state = ReviewSession(project.database, admin.id).reads_for(1)[reader]
    assert state.regions == {"haemorrhage": frozenset({region_at(disc, fovea, (105, 105), (300, 400))}),
                             "drusen": frozenset({region_at(disc, fovea, (303, 203), (300, 400))})}


def test_a_coco_file_needs_the_reader_and_known_findings(empty, tmp_path):
    project, admin = empty
    document = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "dragon scales"}]}
    (tmp_path / "c.json").write_text(json.dumps(document))
    with pytest.raises(InvalidRequestError, match="--reader NAME"):
        import_labels(project, tmp_path / "c.json", admin.id)
    with pytest.raises(InvalidRequestError, match="not a finding of this project"):
        import_labels(project, tmp_path / "c.json", admin.id, reader="Dr X")
