"""``screenshot`` renders the main states of a project to PNGs without changing the project."""
from __future__ import annotations

import hashlib

from PySide6.QtGui import QImage

from main import main
from ui.screenshots.workstation import render_screenshots


def test_screenshots_of_a_project_leave_its_database_alone(qapp, reading_project, tmp_path):
    database = reading_project.folder / "octant.sqlite"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    paths = render_screenshots(tmp_path / "shots", project=reading_project.folder,
                               reader="Ana", size=(1000, 700))
    assert [p.name for p in paths] == ["1-queue.png", "2-regions.png", "3-finding.png",
                                       "4-view-aids.png", "6-shortcuts.png"]  # no model masks
    for path in paths:
        image = QImage(str(path))
        assert image.width() >= 500 and image.height() >= 400
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before


def test_a_readers_screenshots_show_only_their_own_window(qapp, reading_project, tmp_path):
    # `screenshot --reader Ana` (her PIN asked) drew the review screen with every reader's labels,
    # the training panel and the admin's dialog, as the project's first reviewer and admin.
    from ui.screenshots.staging import stage_readers_answers

    stage_readers_answers(reading_project.project.database)   # something to compare on the review screen
    names = lambda who: {p.name for p in render_screenshots(tmp_path / who, project=reading_project.folder,
                                                            reader=who, size=(1000, 700))}
    assert not any(name.startswith(("7-review", "8-", "9-", "10-")) for name in names("Ana"))
    assert names("Admin") >= {"1-queue.png", "7-review.png", "8-training.png", "9-readers.png", "10-sets.png"}


def test_staging_settles_the_last_disagreement_so_the_review_queue_shows_a_mark(reading_project):
    from storage.adjudication import list_adjudications
    from storage.project import project_settings
    from ui.screenshots.staging import stage_adjudication, stage_readers_answers

    db = reading_project.project.database
    stage_readers_answers(db)          # photo 2: regions differ; photo 3: a single vote
    stage_adjudication(db, reading_project.readers["Admin"].id)
    [entry] = list_adjudications(db)
    first_finding = project_settings(db).findings[0].code
    assert (entry.image_id, entry.finding, entry.present) == (reading_project.image_ids[2], first_finding, False)


def test_gui_and_screenshot_are_commands(capsys):
    for command in ("gui", "screenshot"):
        try:
            main([command, "--help"])
        except SystemExit as exit_:
            assert exit_.code == 0
        assert "--project" in capsys.readouterr().out


def test_gui_without_a_display_says_what_to_do(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["gui", "--demo"]) == 1
    assert "No display found" in capsys.readouterr().err
    # A new-user trial: a mistyped option was only said once a display was found.
    assert main(["gui", "--precision", "fp8"]) == 1
    assert capsys.readouterr().err == "octant: Unknown precision 'fp8'; choose 'auto', 'fp32' or 'bf16'.\n"


def test_screenshots_of_a_project_whose_database_is_at_a_url(qapp, reading_project, tmp_path):
    # `screenshot --database-url` (a clinic's PostgreSQL) copied the folder's octant.sqlite, which such
    # a project has not: a traceback ("unable to open database file").
    from storage.database import sqlite_url

    reading_project.project.close()
    server = tmp_path / "server"
    server.mkdir()
    (reading_project.folder / "octant.sqlite").rename(server / "clinic.sqlite")
    before = hashlib.sha256((server / "clinic.sqlite").read_bytes()).hexdigest()
    paths = render_screenshots(tmp_path / "shots", project=reading_project.folder, reader="Ana", size=(1000, 700),
                               database_url=sqlite_url(server / "clinic.sqlite"))
    assert [p.name for p in paths][:2] == ["1-queue.png", "2-regions.png"]
    assert hashlib.sha256((server / "clinic.sqlite").read_bytes()).hexdigest() == before
    assert not (reading_project.folder / "octant.sqlite").exists()
