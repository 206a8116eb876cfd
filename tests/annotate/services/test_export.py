"""Export of every reader's labels and the consensus, read back from CSV and JSON."""
from __future__ import annotations

import csv
import json
from collections import defaultdict

import pytest

from annotate.consensus import consensus_for_image
from annotate.services.export import export_labels
from storage.assignment import assign_readers
from storage.errors import AccessDeniedError, InvalidRequestError
from storage.images import NewImage, add_images
from storage.readers import Role, add_reader
from storage.reading import ReaderSession
from storage.review import ReviewSession
from tests.conftest import make_admin


@pytest.fixture()
def read_project(tmp_project):
    """Two images read by three ophthalmologists (one read left unfinished), and an admin."""
    db = tmp_project.database
    admin = make_admin(db)
    readers = [add_reader(db, f"Dr {name}", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
               for name in ("Ahn", "Baek", "Cho")]
    images = add_images(db, [NewImage(tmp_project.root / f"eye{i}.jpg", f"{i + 1:064x}", 96, 64, None, "train")
                             for i in range(2)])
    assign_readers(db)
    a, b, c = (ReaderSession(db, r.id) for r in readers)
    first, second = images
    a.set_regions(first, "haemorrhage", {1, 5})
    a.set_diagnosis(first, "mild NPDR")
    a.mark_done(first)
    b.set_regions(first, "haemorrhage", {5, 6})
    b.set_regions(first, "drusen", {1})
    b.mark_done(first)
    c.mark_normal(first)
    c.set_landmarks(first, disc=(70.0, 30.0), fovea=(40.0, 33.0))
    c.mark_done(first)
    a.set_ungradable(second)
    a.mark_done(second)
    b.mark_normal(second)
    b.mark_done(second)
    c.set_regions(second, "haemorrhage", {2})          # not marked done: left out of consensus
    return tmp_project, readers, admin, images


def test_csv_round_trip_gives_back_each_reader_and_the_consensus(read_project, tmp_path):
    project, readers, admin, images = read_project
    summary = export_labels(project, tmp_path / "labels.csv", "csv", admin.id)
    assert (summary.images, summary.reads) == (2, 6)
    rows = list(csv.DictReader(open(tmp_path / "labels.csv", encoding="utf-8")))
    back: dict[tuple[int, int], dict[str, frozenset[int]]] = defaultdict(dict)
    for row in rows:
        if row["record"] == "reader" and row["finding"]:
            regions = frozenset(int(c) for c in row["regions"].split(";"))
            back[int(row["image_id"]), int(row["reader_id"])][row["finding"]] = regions
    review = ReviewSession(project.database, admin.id)
    for image in images:
        for reader_id, state in review.reads_for(image).items():
            assert back.get((image, reader_id), {}) == state.regions
    haemorrhage = next(r for r in rows if r["record"] == "consensus" and r["finding"] == "haemorrhage"
                       and int(r["image_id"]) == images[0])
    assert (haemorrhage["state"], haemorrhage["votes"], haemorrhage["regions"]) == ("present", "2", "1;5;6")
    assert haemorrhage["region_names"] == "macula;superotemporal;inferotemporal"
    assert haemorrhage["diagnosis"] == ""                  # one reader of three: no majority
    normal_row = next(r for r in rows if r["record"] == "reader" and r["reader"] == "Dr Cho" and int(r["image_id"]) == images[0])
    assert (normal_row["normal"], normal_row["finding"], normal_row["role"]) == ("1", "", "ophthalmologist")
    assert {r["path"] for r in rows} == {"eye0.jpg", "eye1.jpg"}


def test_json_round_trip_matches_the_consensus_rules(read_project, tmp_path):
    project, readers, admin, images = read_project
    export_labels(project, tmp_path / "labels.json", "json", admin.id)
    document = json.loads((tmp_path / "labels.json").read_text(encoding="utf-8"))
    assert document["consensus_k"] == 2 and document["regions"]["1"] == "macula"
    first, second = document["images"]
    states = ReviewSession(project.database, admin.id).reads_for(images[0])
    expected = consensus_for_image([s for s in states.values()], [f["code"] for f in document["findings"]])
    for code, finding in first["consensus"]["findings"].items():
        assert finding == dict(state=expected.findings[code].state, votes=expected.findings[code].votes,
                               cue_regions=sorted(expected.findings[code].cue_regions))
    cho = next(r for r in first["reads"] if r["reader"] == "Dr Cho")
    assert cho["landmarks"] == dict(disc=[70.0, 30.0], fovea=[40.0, 33.0], source="manual")
    assert second["consensus"]["reads"] == 2 and second["consensus"]["gradable_reads"] == 1
    assert second["consensus"]["findings"]["haemorrhage"]["state"] == "uncertain"
    assert any(r["findings"] == {"haemorrhage": [2]} and not r["done"] for r in second["reads"])


def test_export_is_refused_to_readers_and_unknown_formats(read_project, tmp_path):
    project, readers, admin, images = read_project
    with pytest.raises(AccessDeniedError):
        export_labels(project, tmp_path / "x.csv", "csv", readers[0].id)
    with pytest.raises(InvalidRequestError, match="csv or json"):
        export_labels(project, tmp_path / "x.xml", "xml", admin.id)
    with pytest.raises(InvalidRequestError, match="reviewer or admin"):
        export_labels(project, tmp_path / "x.csv", "csv", None)
    assert not list(tmp_path.glob("x.*"))


def test_final_rows_follow_the_label_source_and_readers_rows_stay(read_project, tmp_path):
    from storage.adjudication import record_adjudication
    from storage.project import update_settings

    project, readers, admin, images = read_project
    first = images[0]
    record_adjudication(project.database, admin.id, first, "drusen", True, {2}, diagnosis="PDR",
                        reason="Drusen in 2, not 1.")

    def rows(name):
        export_labels(project, tmp_path / name, "csv", admin.id)
        with open(tmp_path / name, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def final(table, code):
        return next(r for r in table if r["record"] == "final" and r["finding"] == code and int(r["image_id"]) == first)

    before = rows("consensus.csv")
    assert (final(before, "drusen")["state"], final(before, "drusen")["source"]) == ("uncertain", "consensus")
    assert final(before, "haemorrhage")["regions"] == "1;5;6"
    update_settings(project.database, label_source="adjudicated")
    after = rows("adjudicated.csv")
    drusen = final(after, "drusen")
    assert (drusen["state"], drusen["regions"], drusen["source"], drusen["diagnosis"]) == ("present", "2", "adjudicated", "PDR")
    assert drusen["comment"] == "Drusen in 2, not 1."
    assert [r for r in after if r["record"] != "final"] == [r for r in before if r["record"] != "final"]
    export_labels(project, tmp_path / "a.json", "json", admin.id)
    document = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    entry = next(i for i in document["images"] if i["id"] == first)
    assert document["label_source"] == "adjudicated"
    assert entry["final"]["findings"]["drusen"] == dict(state="present", regions=[2], source="adjudicated")
    assert entry["final"]["diagnosis_source"] == "adjudicated"
