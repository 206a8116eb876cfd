"""`main.py report`: figures, tables and a summary whose numbers are the report numbers'."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image as PILImage

from main import main
from models.report.writer import FIGURES, SUMMARY, TABLES
from storage.assignment import assign_readers
from storage.images import NewImage, add_images
from storage.predictions import FINDINGS_PREDICTION, save_prediction
from storage.project import create_project
from storage.readers import Role
from storage.reading import ReaderSession
from tests.conftest import ADMIN_PASSPHRASE, add_reader_as_admin

REVIEWER_PIN = ADMIN_PASSPHRASE   # one credential for the reviewer and the admin here; each `--as` checks it


@pytest.fixture(autouse=True)
def credential(monkeypatch):
    """`--as Reviewer` and `--as Admin` sign in with it (both need one)."""
    monkeypatch.setenv("OCTANT_CREDENTIAL", REVIEWER_PIN)


def three_readers_and_a_reviewer_on_twelve_images(db, tmp_path) -> tuple[list[int], list[int | None]]:
    """The clinic's people and photos, each photo given to the three readers: their ids and the images'."""
    readers = [add_reader_as_admin(db, f"Dr {i}").id for i in range(3)]
    add_reader_as_admin(db, "Reviewer", Role.REVIEWER, REVIEWER_PIN)
    images = add_images(db, [NewImage(tmp_path / f"eye{i}.jpg", f"{i + 1:064x}", 64, 48, None, "train")
                             for i in range(12)])
    assign_readers(db)
    return readers, images


@pytest.fixture
def project_folder(tmp_path):
    rng = np.random.default_rng(5)
    with create_project(tmp_path / "project", name="Clinic") as project:
        db = project.database
        readers, images = three_readers_and_a_reviewer_on_twelve_images(db, tmp_path)
        for n, image in enumerate(images):
            present = n % 3 == 0
            for slot, reader in enumerate(readers):
                session = ReaderSession(db, reader)
                if present and slot < 2 or n == 4 and slot == 0:
                    session.set_regions(image, "haemorrhage", {1, 5} if slot else {1, 6})
                else:
                    session.mark_normal(image)
                session.set_diagnosis(image, "mild NPDR" if present else "no DR")
                session.mark_done(image)
            save_prediction(db, image, FINDINGS_PREDICTION, {
                "findings": {"haemorrhage": {"probability": float(np.clip(0.6 * present + rng.random() * 0.5, 0, 1)),
                                             "region_activation": [1, 3, 0, 0, 0, 2, 1, 0, 0]}},
                "diagnosis": {"no DR": 0.3 + 0.4 * (not present), "mild NPDR": 0.5}}, "test-model")
    return tmp_path / "project"


def test_report_writes_every_figure_table_and_the_summary(project_folder, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--as", "Reviewer", "--project", str(project_folder)]) == 0
    assert "summary.html" in capsys.readouterr().out
    for name in FIGURES:
        assert PILImage.open(out / f"{name}.png").size[0] > 100
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    for name in TABLES:
        assert (out / f"{name}.csv").is_file()
    from models.report.project_numbers import project_numbers
    from storage.project import open_project
    from storage.readers import find_reader
    with open_project(project_folder) as project:
        numbers = project_numbers(project.database, find_reader(project.database, "Reviewer").id)
    haemorrhage = numbers.finding("haemorrhage")
    with open(out / "findings.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["finding"] == "haemorrhage")
    assert int(row["present"]) == haemorrhage.present == 4 and int(row["uncertain"]) == 1
    assert float(row["auroc"]) == pytest.approx(haemorrhage.model.auroc, abs=1e-4)
    assert float(row["regional_kappa"]) == pytest.approx(haemorrhage.regional_kappa, abs=1e-4)
    assert float(row["fleiss_kappa"]) > float(row["regional_kappa"])        # regions {1,5} vs {1,6}
    # Cue {1, 5, 6} (the union) holds 3 + 2 + 1 of the 7 units of activation; every positive is found.
    assert float(row["air_tp"]) == pytest.approx(6 / 7, abs=1e-4) and row["air_fn"] == ""
    with open(out / "reading_times.csv", newline="") as handle:
        timings = list(csv.DictReader(handle))
    assert sorted(r["reader"] for r in timings) == ["Dr 0", "Dr 1", "Dr 2"] and all(int(r["images"]) == 12 for r in timings)
    with open(out / "reader_periods.csv", newline="") as handle:
        periods = list(csv.DictReader(handle))
    assert len(periods) == 3 and all(int(p["images"]) == 12 for p in periods)     # one week each
    assert main(["report", "--out", str(out / "blocks"), "--as", "Reviewer", "--period", "5",
                 "--project", str(project_folder)]) == 0
    with open(out / "blocks" / "reader_periods.csv", newline="") as handle:
        assert [p["period"] for p in csv.DictReader(handle)][:3] == ["1-5", "6-10", "11-15"]
    summary = (out / SUMMARY).read_text(encoding="utf-8")
    assert "Haemorrhage" in summary and "Dr 0" in summary and "consensus" in summary


def test_report_is_refused_to_readers_and_bad_folders_in_one_line(project_folder, tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "r"), "--as", "Dr 0", "--project", str(project_folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reviewers and admins" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", "--out", str(blocker / "r"), "--as", "Reviewer", "--project", str(project_folder)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_gold_mix_says_why_nothing_was_mixed_in_or_how_many_reads_were(project_folder, capsys):
    from storage.project import open_project
    from storage.quality import mark_gold
    from storage.readers import list_readers

    where = ["--project", str(project_folder)]
    assert main(["gold", "mix", "--as", "Admin", *where]) == 0
    assert capsys.readouterr().out == ("No gold-standard images yet, so nothing was mixed in; add one with "
                                       "`gold add IMAGE --as ADMIN`.\n")
    with open_project(project_folder) as project:
        admin = next(r for r in list_readers(project.database) if r.name == "Admin").id
        fresh = add_images(project.database, [NewImage(project_folder / "new.jpg", f"{99:064x}", 64, 48, None,
                                                       "train")])[0]
        mark_gold(project.database, admin, fresh, {}, None)
    assert main(["gold", "mix", "--as", "Admin", *where]) == 0
    assert capsys.readouterr().out == "Mixed 3 gold-standard reads into the readers' queues.\n"


def test_gold_commands_and_the_gold_scores_in_the_report(project_folder, tmp_path, capsys):
    from storage.project import open_project
    from storage.readers import list_readers

    where = ["--project", str(project_folder)]
    assert main(["gold", "add", "1", "--finding", "haemorrhage:1,5", "--diagnosis", "mild NPDR", "--as", "Admin", *where]) == 0
    assert "haemorrhage in [1, 5]" in capsys.readouterr().out
    assert main(["gold", "add", "1", "--as", "Admin", *where]) == 1
    assert "entered once" in capsys.readouterr().err
    assert main(["gold", "list", "--as", "Dr 0", *where]) == 1
    capsys.readouterr()
    assert main(["gold", "mix", "--as", "Admin", *where]) == 0   # the three readers have image 1 already
    assert capsys.readouterr().out == "Nothing to mix in: every reader already has a read of the gold-standard image.\n"
    assert main(["gold", "list", "--as", "Reviewer", *where]) == 0
    assert "haemorrhage 1,5" in capsys.readouterr().out
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--as", "Reviewer", *where]) == 0
    with open(out / "gold_scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Image 1 (n = 0): two of three readers marked haemorrhage in {1, 6} / {1, 5}; the third said normal.
    assert sorted((r["reader"], r["sensitivity"]) for r in rows) == [("Dr 0", "1.0000"), ("Dr 1", "1.0000"),
                                                                     ("Dr 2", "0.0000")]
    assert all(r["diagnosis_accuracy"] == "1.0000" for r in rows)
    assert "Readers against gold-standard images" in (out / SUMMARY).read_text(encoding="utf-8")

    # Repeats: every finished read reopened; Dr 0 reads everything again the same way but one image.
    assert main(["repeats", "--share", "1", "--as", "Reviewer", *where]) == 1           # admins only
    assert main(["repeats", "--share", "1", "--as", "Admin", *where]) == 0
    from storage.quality import repeat_first_answers
    from storage.reading import ReaderSession
    with open_project(project_folder) as project:
        db = project.database
        dr0 = next(r for r in list_readers(db) if r.name == "Dr 0").id
        for (image, reader), first in repeat_first_answers(db).items():
            if reader != dr0:
                continue
            session = ReaderSession(db, reader)
            regions = first["regions"].get("haemorrhage")
            if regions and image != 4:
                session.set_regions(image, "haemorrhage", set(regions))
            else:
                session.mark_normal(image)
            session.mark_done(image)
    assert main(["report", "--out", str(out / "again"), "--as", "Reviewer", *where]) == 0
    with open(out / "again" / "repeat_scores.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    # Gold image 1 is never repeated; Dr 0 marked haemorrhage on images 4, 5, 7, 10 and misses 4 again.
    assert (row["reader"], row["repeats"], row["found_again"]) == ("Dr 0", "11", "0.7500")



def _model_notes(summary: str) -> list[str]:
    """The summary's notes that speak of the model's predictions or of red-free photos."""
    import html
    import re
    notes = [html.unescape(n) for n in re.findall(r"<li>(.*?)</li>", summary)]
    return [n for n in notes if "prediction" in n or "red-free" in n]


@pytest.mark.parametrize("red_free", [12, 4])
def test_red_free_photos_get_one_true_sentence_on_the_model(tmp_path, red_free, capsys):
    # The first ``red_free`` photos screened as `screen --project` stores a red-free photo (no finding
    # probability, no diagnosis, marked red-free); the others not screened yet.
    with create_project(tmp_path / "project", name="Clinic") as project:
        db = project.database
        readers, images = three_readers_and_a_reviewer_on_twelve_images(db, tmp_path)
        for n, image in enumerate(images):
            for reader in readers:
                ReaderSession(db, reader).mark_normal(image)
                ReaderSession(db, reader).mark_done(image)
            if n < red_free:
                save_prediction(db, image, FINDINGS_PREDICTION, {"findings": {}, "diagnosis": {}, "red_free": True},
                                "test-model")
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--as", "Reviewer", "--project", str(tmp_path / "project")]) == 0
    assert f"(12 images, 0 with model predictions, {red_free} red-free left out)" in capsys.readouterr().out
    said = _model_notes((out / SUMMARY).read_text(encoding="utf-8"))
    why = ("screening gives no finding probability or diagnosis for red-free photos, as the networks learnt on "
           "colour photos.")
    if red_free == 12:   # their predictions are stored, only withheld: "none stored yet" would be false
        assert said == [f"All 12 labelled photos are red-free, so the report has no model numbers: {why}"]
    else:
        assert said == [f"4 labelled red-free photos are left out of the model's numbers: {why}",
                        "No model predictions are stored for the 8 labelled colour photos yet: run `screen "
                        "--project` on the photos for ROC, precision–recall, operating points and AIR."]


def test_a_screened_project_not_yet_read_is_not_told_to_run_screen(tmp_path, capsys):
    # A new-user trial: right after `screen --project`, the report said "No model predictions are
    # stored yet: run `screen --project` on the photos".
    with create_project(tmp_path / "project", name="Clinic") as project:
        db = project.database
        add_reader_as_admin(db, "Reviewer", Role.REVIEWER, REVIEWER_PIN)
        for image in add_images(db, [NewImage(tmp_path / f"eye{i}.jpg", f"{i + 1:064x}", 64, 48, None, "train")
                                     for i in range(3)]):
            save_prediction(db, image, FINDINGS_PREDICTION, {"findings": {}, "diagnosis": {}}, "test-model")
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--as", "Reviewer", "--project", str(tmp_path / "project")]) == 0
    summary = (out / SUMMARY).read_text(encoding="utf-8")
    assert "3 images have a stored model prediction, but none of them has a reader" in summary
    assert "run `screen --project`" not in summary
