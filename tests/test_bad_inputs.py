"""The bad-input corpus: files, options and damaged projects a new user really tried.

Each case runs ``main.main`` in-process as the user would and asserts three things: the exit
status, one line on stderr that says what went wrong (a key phrase of it), and that nothing saved
changed (every row of the project database and every file of the project folder, before and
after). A case is (name, setup, expected status, key phrase): ``setup(env)`` prepares the bad input
and returns the command line.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
import storage.database
from storage.project import create_project
from storage.readers import create_first_admin
from tests.annotate.fundus import synthetic_fundus, write_photo, write_truncated_jpeg
from tests.conftest import ADMIN_PASSPHRASE

USAGE = 2   # argparse's status for a bad option
FAILED = 1  # an OctantError


@dataclass
class Env:
    root: Path       # a temporary folder
    project: Path    # a project with two photos and an admin
    photos: Path     # an empty folder for bad photos

    @property
    def database(self) -> Path:
        return self.project / "octant.sqlite"


@pytest.fixture
def env(tmp_path, monkeypatch) -> Env:
    project = tmp_path / "clinic"
    with create_project(project, name="Clinic") as handle:
        create_first_admin(handle.database, "Boss", ADMIN_PASSPHRASE)
    monkeypatch.setenv("OCTANT_CREDENTIAL", ADMIN_PASSPHRASE)   # `--as Boss` signs in with it
    monkeypatch.setenv("OCTANT_ADMIN_PASSPHRASE", ADMIN_PASSPHRASE)
    good = tmp_path / "good"
    write_photo(good / "a_L.jpg", seed=1)
    write_photo(good / "b_R.png", seed=2)
    assert main.main(["import", str(good), "--project", str(project), "--quiet"]) == 0
    photos = tmp_path / "photos"
    photos.mkdir()
    return Env(tmp_path, project, photos)


def snapshot(env: Env) -> tuple[list[str], dict[str, str]]:
    """Every row of the database (as SQL) and every other file of the project and the tmp folder."""
    with sqlite3.connect(f"{env.database.as_uri()}?mode=ro", uri=True) as connection:
        rows = list(connection.iterdump())
    connection.close()
    files = {}
    for path in sorted(env.root.rglob("*")):
        if path.is_file() and not path.name.startswith("octant.sqlite"):
            files[str(path.relative_to(env.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return rows, files


# ------------------------------------------------------------------ bad photos
def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` pixels over a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is rewritten to claim ``width`` × ``height``."""
    data = bytearray(encoded(".jpg", synthetic_fundus(96, 64, 48, 32, 58)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def encoded(suffix: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def big_jpeg() -> bytes:
    return encoded(".jpg", synthetic_fundus(640, 480, 320, 240, 300))


def write(name: str, make):
    def setup(env: Env) -> list:
        make(env.photos / name) if callable(make) else (env.photos / name).write_bytes(make)
        return ["import", env.photos, "--project", env.project, "--quiet"]
    return setup


def mid_stream_garbage(path: Path) -> None:
    data = big_jpeg()
    middle = len(data) // 2
    path.write_bytes(data[:middle] + np.random.default_rng(1).integers(0, 255, 400, np.uint8).tobytes()
                     + data[middle + 400:])


def mid_stream_gap(path: Path) -> None:
    data = big_jpeg()
    path.write_bytes(data[:len(data) // 2] + data[len(data) // 2 + 1500:])


def symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


def symlink_pair(path: Path) -> None:
    other = path.with_name(f"{path.stem}-back.jpg")
    path.symlink_to(other.name)
    other.symlink_to(path.name)


def dangling_link(path: Path) -> None:
    path.symlink_to("moved-away.jpg")


def truncated_png(path: Path) -> None:
    data = encoded(".png", synthetic_fundus(200, 150, 100, 75, 90))
    path.write_bytes(data[: len(data) // 2])


IMPORT_CASES = [
    ("bomb-png-100000-square", write("bomb.png", png_claiming(100_000, 100_000)), "than any fundus camera makes"),
    ("bomb-jpeg-65000-square", write("bomb.jpg", jpeg_claiming(65_000, 65_000)), "than any fundus camera makes"),
    ("png-header-claims-108-megapixels", write("huge.png", png_claiming(12_000, 9_000)), "more than any fundus camera"),
    ("symlink-to-itself", write("loop.jpg", symlink_loop), "a symbolic link that leads back to itself"),
    ("two-symlinks-in-a-circle", write("circle.jpg", symlink_pair), "a symbolic link that leads back to itself"),
    ("dangling-symlink", write("gone.jpg", dangling_link), "does not exist"),
    ("png-10-by-10", write("tiny.png", encoded(".png", np.full((10, 10, 3), 90, np.uint8))), "too small for a fundus photograph"),
    ("jpeg-10-by-10", write("tiny.jpg", encoded(".jpg", synthetic_fundus(10, 10, 5, 5, 5))), "too small for a fundus photograph"),
    ("strip-2000-by-40", write("strip.png", encoded(".png", synthetic_fundus(2000, 40, 1000, 20, 900))), "only 2000 × 40 pixels"),
    ("jpeg-garbage-mid-stream", write("garbled.jpg", mid_stream_garbage), "data missing or garbled in the middle"),
    ("jpeg-gap-mid-stream", write("gap.jpg", mid_stream_gap), "data missing or garbled in the middle"),
    ("jpeg-cut-short", write("short.jpg", write_truncated_jpeg), "truncated or damaged JPEG"),
    ("png-cut-short", write("short.png", truncated_png), "damaged PNG"),
    ("empty-jpeg", write("empty.jpg", b""), "is empty"),
    ("text-named-jpeg", write("notes.jpg", b"Patient list, not a photo\n"), "is not a JPEG, PNG, TIFF or DICOM"),
    ("html-named-png", write("page.png", b"<!doctype html><title>x</title>"), "is not a JPEG, PNG, TIFF or DICOM"),
]


@pytest.mark.parametrize("name, setup, phrase", IMPORT_CASES, ids=[case[0] for case in IMPORT_CASES])
def test_a_bad_photo_is_skipped_with_one_sentence_and_nothing_saved_changes(env, capsys, name, setup, phrase):
    argv = [str(a) for a in setup(env)]
    capsys.readouterr()
    before = snapshot(env)
    assert main.main(argv) == FAILED
    out, err = capsys.readouterr()
    assert out.startswith("Imported 0 new photographs; 0 already known;") and "could not be read." in out
    skipped = [line for line in out.splitlines() if line.startswith("  skipped:")]
    assert skipped and all(phrase in line for line in skipped), out
    assert "Traceback" not in out + err
    assert snapshot(env) == before


def test_a_folder_with_no_photograph_by_name_says_so_and_what_it_holds(env, capsys):
    # Trying the product: a folder of .bmp and .webp fundus photos said "Imported 0 new photographs;
    # 0 already known; 0 could not be read." and exited 0.
    cv2.imwrite(str(env.photos / "eye.bmp"), np.full((100, 100, 3), 90, np.uint8))
    (env.photos / "eye2.bmp").write_bytes((env.photos / "eye.bmp").read_bytes())
    (env.photos / "notes.txt").write_text("camera log")
    (env.root / "empty").mkdir()
    before = snapshot(env)
    capsys.readouterr()
    assert main.main(["import", str(env.photos), "--project", str(env.project), "--quiet"]) == FAILED
    assert capsys.readouterr().err == (f"octant: No photographs found in {env.photos} (files there: 2 .bmp, 1 .txt); "
                                       "Octant reads .jpg, .jpeg, .png, .tif, .tiff, .dcm: save the photos as PNG "
                                       "and import those.\n")
    assert main.main(["import", str(env.root / "empty"), "--project", str(env.project), "--quiet"]) == FAILED
    assert capsys.readouterr().err == f"octant: No photographs found in {env.root / 'empty'} (no files there); " \
                                      "check the path.\n"
    assert snapshot(env) == before


def test_files_of_other_formats_beside_photos_are_counted_in_one_line(env, capsys):
    # A new-user trial: a folder of photos with some .bmp and .webp among them imported the photos
    # and passed over the others in silence.
    write_photo(env.photos / "eye_L.jpg", seed=9)
    cv2.imwrite(str(env.photos / "eye.bmp"), np.full((100, 100, 3), 90, np.uint8))
    (env.photos / "eye.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBP")
    (env.photos / "eye2.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBP")
    capsys.readouterr()
    assert main.main(["import", str(env.photos), "--project", str(env.project), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Imported 1 new photograph;")
    assert out[-1] == ("3 other files in the folder were not imported (2 .webp, 1 .bmp): Octant reads .jpg, .jpeg, "
                       ".png, .tif, .tiff, .dcm; save photos in another format as PNG and import those.")


def test_bad_photos_among_good_ones_do_not_stop_the_import(env, capsys):
    for _name, setup, _ in IMPORT_CASES:
        setup(env)   # all into the same folder
    write_photo(env.photos / "new_L.jpg", seed=9)
    capsys.readouterr()
    assert main.main(["import", str(env.photos), "--project", str(env.project), "--quiet"]) == FAILED
    out = capsys.readouterr().out
    assert out.startswith("Imported 1 new photograph; 0 already known;"), out



# Import's cases that presegment of files refuses with import's sentence: from the header, and
# JPEGs damaged in mid-stream (import's own check of the stream).
PRESEGMENT_CASES = [case for case in IMPORT_CASES
                    if any(word in case[2] for word in ("too small", "only 2000", "than any fundus camera", "is empty",
                                                        "garbled in the middle", "truncated or damaged JPEG"))]


@pytest.mark.parametrize("name, setup, phrase", PRESEGMENT_CASES, ids=[case[0] for case in PRESEGMENT_CASES])
def test_presegment_of_files_refuses_what_import_refuses(env, capfd, name, setup, phrase):
    # A 10 × 10 or 2000 × 40 picture got disc, cup and lesion suggestions as if it were a photograph,
    # and a JPEG garbled in mid-stream suggestions on its grey-filled part.
    setup(env)
    (env.root / "no-weights").mkdir()
    out = env.root / "masks"
    code = main.main(["presegment", str(env.photos), "--out", str(out), "--weights-dir", str(env.root / "no-weights"),
                      "--device", "cpu"])
    assert code != 0
    err = capfd.readouterr().err
    (skipped,) = [line for line in err.splitlines() if line.startswith("skipped")]
    assert phrase in skipped and skipped.count(next(env.photos.iterdir()).name) == 1, skipped   # named once
    assert "Traceback" not in err and "Corrupt JPEG" not in err and not list(out.rglob("result.json"))


def test_screen_of_files_refuses_what_import_refuses_and_screens_the_rest(env, capfd):
    # A 48 × 32 thumbnail was called "microaneurysm 0.78" and a JPEG garbled in mid-stream
    # "haemorrhage 1.00": screen now says of each what import says.
    bad = {"thumbnail.jpg": (encoded(".jpg", synthetic_fundus(48, 32, 14, 16, 14)), "too small for a fundus photograph"),
           "bomb.png": (png_claiming(12_000, 9_000), "more than any fundus camera"),
           "empty.jpg": (b"", "is empty")}
    for name, (data, _phrase) in bad.items():
        (env.photos / name).write_bytes(data)
    mid_stream_garbage(env.photos / "garbled.jpg")
    bad["garbled.jpg"] = (b"", "data missing or garbled in the middle")
    write_photo(env.photos / "good_L.jpg", seed=9)
    capfd.readouterr()
    code = main.main(["screen", str(env.photos), "--out", str(env.root / "screened"), "--device", "cpu"])
    out, err = capfd.readouterr()
    assert code == FAILED and "Traceback" not in out + err and "Corrupt JPEG" not in err
    assert {folder.name for folder in (env.root / "screened").iterdir()} == {"good_L"}
    for name, (_data, phrase) in bad.items():
        (line,) = [line for line in err.splitlines() if name in line]
        assert phrase in line and line.count(name) == 1, line

# ------------------------------------------------------------------ bad options
def options(*argv):
    return lambda env: list(argv) + ["--project", env.project]


def screenshot(size):
    return lambda env: ["screenshot", "--out", env.root / "shots", "--size", size, "--project", env.project]


def presegment(*argv):
    return lambda env: ["presegment", "--out", env.root / "masks", *argv, env.project]


OPTION_CASES = [
    ("train-batch-size-0", options("train", "--network", "guided", "--finding", "haemorrhage", "--batch-size", "0"),
     "argument --batch-size: must be a whole number of at least 1, not '0'"),
    ("train-lr-negative", options("train", "--network", "guided", "--lr", "-1"), "argument --lr: must be a number above 0"),
    ("train-lr-word", options("train", "--network", "guided", "--lr", "fast"), "argument --lr: must be a number above 0"),
    ("train-lr-nan", options("train", "--network", "guided", "--lr", "nan"), "argument --lr: must be a number above 0"),
    ("train-input-size-7", options("train", "--network", "guided", "--input-size", "7"),
     "argument --input-size: must be a positive multiple of 32 pixels"),
    ("train-input-size-100", options("train", "--network", "attention-mask", "--input-size", "100"),
     "argument --input-size: must be a positive multiple of 32"),
    ("train-epochs-0", options("train", "--network", "attention-mask", "--epochs", "0"), "argument --epochs: must be a whole number"),
    ("train-width-0", options("train", "--network", "guided", "--width", "0"), "argument --width: must be a whole number"),
    ("train-frozen-blocks-negative", options("train", "--network", "attention-mask", "--frozen-blocks", "-1"),
     "argument --frozen-blocks: must be a whole number of 0 or more, not '-1'"),
    ("train-fold-6-of-5", options("train", "--network", "attention-mask", "--fold", "6/5"),
     "argument --fold: fold 6/5 does not exist; I must be between 1 and K"),
    ("train-fold-word", options("train", "--network", "attention-mask", "--fold", "half"),
     "argument --fold: 'half' is not a fold; write I/K"),
    ("train-seg-batch-size-0", lambda env: ["train-seg", "--task", "vessels", "--batch-size", "0"],
     "argument --batch-size: must be a whole number of at least 1"),
    ("train-seg-lr-negative", lambda env: ["train-seg", "--task", "vessels", "--lr", "-1"], "argument --lr: must be a number above 0"),
    ("train-seg-epochs-negative", lambda env: ["train-seg", "--task", "lesions", "--epochs", "-3"],
     "argument --epochs: must be a whole number"),
    ("train-seg-workers-negative", lambda env: ["train-seg", "--task", "lesions", "--workers", "-2"],
     "argument --workers: must be a whole number of 0 or more, not '-2'"),
    ("train-seg-steps-0", lambda env: ["train-seg", "--task", "disc_cup", "--steps-per-epoch", "0"],
     "argument --steps-per-epoch: must be a whole number"),
    ("screenshot-size-big", screenshot("big"), "argument --size: must be WIDTHxHEIGHT in pixels"),
    ("screenshot-size-10x10", screenshot("10x10"), "argument --size: must be WIDTHxHEIGHT in pixels, each 320 to 8192"),
    ("screenshot-size-one-number", screenshot("1600"), "argument --size: must be WIDTHxHEIGHT"),
    ("presegment-batch-size-negative", presegment("--batch-size", "-1"), "argument --batch-size: must be a whole number"),
    ("presegment-batch-size-0", presegment("--batch-size", "0"), "argument --batch-size: must be a whole number"),
    # Trying the product: a mistyped head said "The audit trail has been tampered with".
    ("audit-expect-head-typo", options("audit", "verify", "--expect-head", "zz"),
     "argument --expect-head: must be the 64-character head hash that `audit verify` printed, not 'zz'"),
    ("assign-readers-per-image-0", options("assign", "--readers-per-image", "0"),
     "argument --readers-per-image: must be a whole number of at least 1, not '0'"),
]


@pytest.mark.parametrize("name, setup, phrase", OPTION_CASES, ids=[case[0] for case in OPTION_CASES])
def test_a_bad_option_is_one_line_before_anything_starts(env, capsys, name, setup, phrase):
    argv = [str(a) for a in setup(env)]
    capsys.readouterr()
    before = snapshot(env)
    with pytest.raises(SystemExit) as stopped:
        main.main(argv)
    out, err = capsys.readouterr()
    assert stopped.value.code == USAGE
    assert phrase in err and err.count("\n") == 1 and "usage:" not in err, err
    assert not (env.root / "shots").exists() and not (env.root / "masks").exists()
    assert snapshot(env) == before


def test_presegment_onto_a_file_is_one_sentence_and_leaves_the_file(env, capsys):
    """--out naming a file listed every photo as "skipped as unreadable" ([Errno 20] Not a directory)."""
    target = env.root / "notes.txt"
    target.write_text("keep me\n")
    capsys.readouterr()
    assert main.main(["presegment", str(env.root / "good"), "--out", str(target), "--device", "cpu"]) == FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notes.txt is a file, not a folder" in err and "unreadable" not in err, err
    assert target.read_text() == "keep me\n"


@pytest.mark.parametrize("where", ["onto", "under"])
def test_screenshot_onto_or_under_a_file_is_one_sentence_and_leaves_the_file(env, capsys, where):
    # A new-user trial: `screenshot --out /etc/passwd` ended in mkdir's FileExistsError traceback.
    target = env.root / "notes.txt"
    target.write_text("keep me\n")
    out = target if where == "onto" else target / "shots"
    before = snapshot(env)
    capsys.readouterr()
    assert main.main(["screenshot", "--out", str(out), "--project", str(env.project)]) == FAILED
    err = capsys.readouterr().err
    phrase = "notes.txt is a file, not a folder" if where == "onto" else "shots (Not a directory); choose a folder"
    assert err.startswith("octant: ") and err.count("\n") == 1 and phrase in err, err
    assert snapshot(env) == before


def test_presegment_under_a_file_is_one_sentence_not_a_skip_per_photo(env, capsys):
    # A new-user trial: `presegment photos --out /etc/passwd/sub` ran the networks, then called every
    # photo "skipped" with "[Errno 20] Not a directory: …".
    target = env.root / "notes.txt"
    target.write_text("keep me\n")
    capsys.readouterr()
    assert main.main(["presegment", str(env.root / "good"), "--out", str(target / "masks"), "--device", "cpu"]) == FAILED
    err = capsys.readouterr().err
    assert err == f"octant: Cannot create {target / 'masks'} (Not a directory); choose a folder you can write to.\n"
    assert target.read_text() == "keep me\n"


# ------------------------------------------------------------------ export
def export_onto_existing(env: Env) -> list:
    (env.root / "labels.csv").write_text("someone's spreadsheet\n")
    return ["export", "--out", env.root / "labels.csv", "--as", "Boss", "--project", env.project]


def export_as(out: str, *extra):
    return lambda env: ["export", "--out", env.root / out, *extra, "--as", "Boss", "--project", env.project]


def audit_export_onto_existing(env: Env) -> list:
    (env.root / "trail.csv").write_text("last month's audit, kept\n")
    return ["audit", "export", "--out", env.root / "trail.csv", "--as", "Boss", "--project", env.project]


def audit_export_as(out: str, *extra):
    return lambda env: ["audit", "export", "--out", env.root / out, *extra, "--as", "Boss", "--project", env.project]


def under_a_file(command: str, *words: str):
    """--out inside a file taken for a folder: a JSON export ended in a traceback (unlink's)."""
    def setup(env: Env) -> list:
        (env.root / "notes.txt").write_text("a file, not a folder\n")
        return [*command.split(), "--out", env.root / "notes.txt" / words[0], *words[1:], "--as", "Boss",
                "--project", env.project]
    return setup


EXPORT_CASES = [
    ("export-json-under-a-file", under_a_file("export", "x.json"), "x.json (Not a directory); choose a folder"),
    ("export-csv-under-a-file", under_a_file("export", "x.csv"), "x.csv (Not a directory); choose a folder"),
    ("export-coco-under-a-file", under_a_file("export", "x.json", "--format", "coco"), "(Not a directory)"),
    ("audit-export-under-a-file", under_a_file("audit export", "trail.csv"), "trail.csv (Not a directory)"),
    ("export-onto-an-existing-file", export_onto_existing, "labels.csv already exists; add --force"),
    ("export-json-into-csv-name", export_as("x.csv", "--format", "json"), "--format json does not match the file name x.csv"),
    ("export-csv-into-json-name", export_as("x.json", "--format", "csv"), "--format csv does not match the file name x.json"),
    ("export-unknown-suffix", export_as("x.txt"), "Cannot tell the format from x.txt"),
    ("export-without-a-reviewer", lambda env: ["export", "--out", env.root / "y.csv", "--project", env.project],
     "add --as NAME of a reviewer or admin"),
    ("audit-export-onto-an-existing-file", audit_export_onto_existing, "trail.csv already exists; add --force"),
    ("audit-export-csv-into-json-name", audit_export_as("trail.json", "--format", "csv"),
     "--format csv does not match the file name trail.json"),
    ("audit-export-unknown-suffix", audit_export_as("trail.xml"), "Cannot tell the format from trail.xml"),
]


# ------------------------------------------------------------------ damaged projects
def injected(monkeypatch, on_connect=None, failing_writes=None):
    """Make every project engine run ``on_connect`` SQL per connection, or fail its writes with
    ``failing_writes`` (an sqlite3 error as the driver raises it)."""
    original = storage.database.make_engine

    def make_engine(url, *args, **kwargs):
        engine = original(url, *args, **kwargs)
        if on_connect:
            from sqlalchemy import event

            event.listen(engine, "connect", lambda connection, _: connection.execute(on_connect))
        if failing_writes is not None:
            do_execute = engine.dialect.do_execute

            def execute(cursor, statement, parameters, context=None):
                if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                    raise failing_writes
                return do_execute(cursor, statement, parameters, context)

            engine.dialect.do_execute = execute
        return engine

    monkeypatch.setattr(storage.database, "make_engine", make_engine)


def with_sql(*statements):
    def damage(env: Env) -> None:
        connection = sqlite3.connect(env.database)
        for statement in statements:
            connection.execute(statement)
        connection.commit()
        connection.close()
    return damage


def sqlite_error(message: str, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = name
    return error


ADD_READER = ["readers", "add", "Dr New", "--role", "ophthalmologist", "--as", "Boss"]
DATABASE_CASES = [
    ("read-only-database", ADD_READER, dict(on_connect="PRAGMA query_only = ON"), None,
     "The project database is read-only"),
    ("disk-full", ADD_READER, dict(failing_writes=sqlite_error("database or disk is full", "SQLITE_FULL")), None,
     "The disk holding the project database is full"),
    ("disk-io-error", ADD_READER, dict(failing_writes=sqlite_error("disk I/O error", "SQLITE_IOERR_WRITE")), None,
     "failed to read or write (an I/O error)"),
    ("table-dropped", ["status"], {}, with_sql("DROP TABLE regional_label", "DROP TABLE read"), "The project database's tables are damaged"),
    ("column-dropped", ["readers", "list"], {}, with_sql("ALTER TABLE reader DROP COLUMN active"),
     "The project database's tables are damaged"),
    ("two-schema-versions", ["status"], {}, with_sql("INSERT INTO alembic_version VALUES ('0123abcd')"),
     "records 2 schema versions at once"),
    ("schema-version-missing", ["status"], {}, with_sql("DELETE FROM alembic_version"),
     "holds a project's tables but no schema version"),
    ("schema-version-from-the-future", ["status"], {}, with_sql("UPDATE alembic_version SET version_num = 'ffff9999'"),
     "saved by a newer Octant"),
    ("version-table-missing", ["status"], {}, with_sql("DROP TABLE alembic_version"), "is not a readable Octant database"),
]


@pytest.mark.parametrize("name, setup, phrase", EXPORT_CASES, ids=[case[0] for case in EXPORT_CASES])
def test_a_refused_export_is_one_line_and_writes_nothing(env, capsys, name, setup, phrase):
    argv = [str(a) for a in setup(env)]
    before = snapshot(env)
    capsys.readouterr()
    assert main.main(argv) == FAILED
    out, err = capsys.readouterr()
    assert phrase in err and err.startswith("octant: ") and err.count("\n") == 1, err
    assert snapshot(env) == before


def test_audit_export_takes_its_format_from_the_suffix_and_replaces_only_with_force(env, capsys):
    target = env.root / "trail.json"
    target.write_text("old\n")
    command = ["audit", "export", "--out", str(target), "--as", "Boss", "--project", str(env.project)]
    assert main.main([*command, "--force"]) == 0
    assert json.loads(target.read_text())[0]["action"]   # JSON, as the name says, not CSV


def test_export_replaces_a_file_only_with_force(env, capsys):
    target = env.root / "labels.csv"
    target.write_text("old\n")
    assert main.main(["export", "--out", str(target), "--force", "--as", "Boss", "--project", str(env.project)]) == 0
    assert target.read_text().startswith("record,image_id")


@pytest.mark.parametrize("name, command, faults, damage, phrase", DATABASE_CASES, ids=[case[0] for case in DATABASE_CASES])
def test_a_damaged_or_unwritable_database_is_one_specific_sentence(env, capsys, monkeypatch, name, command, faults,
                                                                    damage, phrase):
    if damage is not None:
        damage(env)
    injected(monkeypatch, **faults)
    before = snapshot(env)
    capsys.readouterr()
    assert main.main([*command, "--project", str(env.project)]) == FAILED
    out, err = capsys.readouterr()
    assert err.startswith("octant: ") and phrase in err and err.count("\n") == 1, err
    assert "close other programs" not in err
    assert snapshot(env) == before


def test_init_refuses_a_folder_whose_database_lost_its_version_row(env, capsys):
    with_sql("DELETE FROM alembic_version")(env)
    before = snapshot(env)
    capsys.readouterr()
    assert main.main(["init", str(env.project), "--admin", "Boss"]) == FAILED
    assert main.main(["status", "--project", str(env.project)]) == FAILED
    err = capsys.readouterr().err
    assert "empty; create a project" not in err and "restore it from a backup" in err
    assert snapshot(env) == before


def test_a_read_only_project_folder_is_called_read_only(env, tmp_path):
    """A real read-only folder and file: as another user when the tests run as root."""
    os.chmod(env.database, 0o444)
    os.chmod(env.project, 0o555)
    command = [sys.executable, str(Path(main.__file__)), *ADD_READER, "--project", str(env.project)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be made")
        for folder in (tmp_path, *tmp_path.parents):   # pytest's folders are private to their owner
            if folder == Path(tempfile.gettempdir()):
                break
            os.chmod(folder, folder.stat().st_mode | 0o005)
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    before = snapshot(env)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=Path(main.__file__).parent)
    finally:
        os.chmod(env.project, 0o755)
        os.chmod(env.database, 0o644)
    assert done.returncode == FAILED and "The project database is read-only" in done.stderr, done.stderr
    assert snapshot(env) == before


def test_a_project_folder_the_user_may_not_enter_is_one_sentence(env, tmp_path):
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: access cannot be denied")
    os.chmod(tmp_path, 0o700)
    command = [sys.executable, str(Path(main.__file__)), "status", "--project", str(env.project)]
    if os.geteuid() == 0:
        command = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    else:
        os.chmod(env.project, 0o000)
    before = snapshot(env) if os.geteuid() == 0 else None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=Path(main.__file__).parent)
    finally:
        os.chmod(env.project, 0o755)
    assert done.returncode == FAILED and "You may not open the project folder" in done.stderr, done.stderr
    assert before is None or snapshot(env) == before


def test_a_file_given_as_the_project_folder_is_called_a_file_not_sent_to_init(env, capsys):
    # A new-user trial: `status --project /etc/passwd` suggested running `init` on the file.
    notes = env.root / "notes.txt"
    notes.write_text("not a project")
    capsys.readouterr()
    assert main.main(["status", "--project", str(notes)]) == FAILED
    assert capsys.readouterr().err == (f"octant: {notes} is a file, not a project folder; give the folder that "
                                       "holds octant.sqlite.\n")
    assert main.main(["status", "--project", str(env.database)]) == FAILED
    assert capsys.readouterr().err == (f"octant: {env.database} is a project's database file; give its folder, "
                                       f"{env.project}.\n")


def test_init_on_a_project_says_so_before_asking_for_a_passphrase(env, capsys, monkeypatch):
    # A new-user trial: `init` run twice asked the new admin's passphrase (twice, at a terminal)
    # and only then said the folder already holds a project.
    monkeypatch.delenv("OCTANT_CREDENTIAL")
    monkeypatch.delenv("OCTANT_ADMIN_PASSPHRASE")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))   # nothing piped: asking would fail
    before = snapshot(env)
    capsys.readouterr()
    assert main.main(["init", str(env.project), "--admin", "Dr Chen"]) == FAILED
    assert capsys.readouterr().err == (f"octant: {env.project} already holds an Octant project; open it instead "
                                       "of creating a new one.\n")
    assert snapshot(env) == before


def test_init_where_no_folder_can_be_made_is_one_sentence(env, capsys):
    # A new-user trial: `init` under a file (or on a read-only disk) ended in mkdir's traceback.
    notes = env.root / "notes.txt"
    notes.write_text("not a folder")
    before = snapshot(env)
    capsys.readouterr()
    assert main.main(["init", str(notes / "clinic"), "--admin", "Dr Chen"]) == FAILED
    err = capsys.readouterr().err
    assert err == (f"octant: Cannot create the project folder {notes / 'clinic'} (Not a directory); choose a "
                   "folder you may write to.\n"), err
    assert snapshot(env) == before


# ------------------------------------------------------------------ pipes, moved photos, non-fundus pictures
class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("command", [["status"], ["readers", "list"]])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(env, capsys, monkeypatch, command):
    before = snapshot(env)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main.main([*command, "--project", str(env.project)]) == 141
    assert "Traceback" not in capsys.readouterr().err
    assert snapshot(env) == before


def test_status_piped_into_head_prints_no_traceback(env):
    script = f"{sys.executable} {Path(main.__file__)} status --project {env.project} | head -c 10"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout == "Project 'C" and done.stderr == ""


def test_photos_moved_on_disk_are_counted_missing_then_relinked_by_their_hash(env, capsys):
    (env.root / "good").rename(env.root / "archive")
    capsys.readouterr()
    assert main.main(["status", "--project", str(env.project)]) == 0
    assert "2 photographs are missing from their stored place" in capsys.readouterr().out
    assert main.main(["import", str(env.root / "archive"), "--project", str(env.project), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Imported 0 new photographs" in out and "Found 2 known photographs at a new place" in out
    from storage.images import list_images
    from storage.project import open_project

    with open_project(env.project) as project:
        assert {image.path.parent.name for image in list_images(project.database)} == {"archive"}
    assert main.main(["status", "--project", str(env.project)]) == 0
    assert "missing" not in capsys.readouterr().out


@pytest.mark.parametrize("picture", [
    np.full((480, 640, 3), 255, np.uint8),
    np.full((480, 640, 3), 40, np.uint8),
    np.clip(np.random.default_rng(0).normal((200, 120, 60), 25, (480, 640, 3)), 0, 255).astype(np.uint8),
], ids=["all-white", "flat-grey", "blue-sky"])
def test_a_picture_that_is_no_retina_gets_no_fundus_found_and_no_suggestions(tmp_path, capsys, picture):
    import json

    cv2.imwrite(str(tmp_path / "picture.png"), picture)
    (tmp_path / "no-weights").mkdir()
    code = main.main(["presegment", str(tmp_path / "picture.png"), "--out", str(tmp_path / "out"),
                      "--weights-dir", str(tmp_path / "no-weights"), "--device", "cpu"])
    assert code == 0
    # A new-user trial: the console said only "1 photos pre-segmented"; the blank went unnoticed.
    assert "1 of them held no retina (\"No fundus found\"): nothing is suggested for it" in capsys.readouterr().err
    result = json.loads(next((tmp_path / "out").rglob("result.json")).read_text())
    assert result["no_fundus"] is True and any(m.startswith("No fundus found") for m in result["messages"])
    assert result["disc"] is None and result["cup_to_disc"] is None and not result["lesion_regions"]
    assert not list((tmp_path / "out").rglob("*.png"))


def test_in_a_batch_only_the_picture_without_a_retina_loses_its_suggestions(tmp_path):
    from models.segmentation.pipeline import load_pipeline_models, run_pipeline_batch
    from tests.models.fundus_synthetic import synthetic_fundus as fundus_with_landmarks

    (tmp_path / "none").mkdir()
    models, _ = load_pipeline_models(tmp_path / "none", "cpu")
    photo = fundus_with_landmarks(320, 240)[0]
    results = run_pipeline_batch([np.full((240, 320, 3), 255, np.uint8), photo], models)
    assert [result.no_fundus for result in results] == [True, False]
    assert results[0].disc is None and results[1].disc is not None and results[1].region_map() is not None


@pytest.mark.parametrize("claiming", [png_claiming(20_000, 20_000), jpeg_claiming(20_000, 20_000),
                                      png_claiming(100_000, 100_000)], ids=["png-20000", "jpeg-20000", "png-100000"])
def test_a_photo_replaced_on_disk_by_a_huge_picture_is_refused_before_it_is_decoded(tmp_path, monkeypatch, claiming):
    """Import refuses such pictures, but a project's photo can be replaced after it was imported:
    the workstation's decode took gigabytes and held up quitting for half a minute."""
    import cv2

    from annotate.services.photos import read_fundus
    from storage.errors import BadImageError

    path = tmp_path / "photo.jpg"
    path.write_bytes(claiming)
    monkeypatch.setattr(cv2, "imdecode", lambda *args: pytest.fail("decoded a picture it should have refused"))
    with pytest.raises(BadImageError, match="than any fundus camera makes") as refused:
        read_fundus(path, reduce=8)
    assert str(refused.value).count(". ") == 0 and str(path) in str(refused.value)


TRUNCATED_COMMANDS = [["status"], ["readers", "list"], ["audit", "verify"], ["assign"],
                      ["export", "--format", "csv", "--out", "labels.csv", "--as", "Boss"]]


@pytest.mark.parametrize("kept", [0.9, 0.5, 0.02], ids=["90-percent", "half", "first-page"])
def test_a_truncated_database_is_one_sentence_for_every_command_and_nothing_changes(env, capsys, monkeypatch, kept):
    """The clinic trial's broken database: a copy cut short (a full disk, a copy stopped)."""
    monkeypatch.chdir(env.root)
    for name in ("octant.sqlite-wal", "octant.sqlite-shm"):   # the database file alone, as copied
        (env.project / name).unlink(missing_ok=True)
    data = env.database.read_bytes()
    env.database.write_bytes(data[:int(len(data) * kept)])
    def files() -> dict[Path, bytes]:   # SQLite's shared-memory index aside: opening makes it
        return {path: path.read_bytes() for path in env.root.rglob("*") if path.is_file() and path.suffix != ".sqlite-shm"
                and not (path.name.endswith("-wal") and path.stat().st_size == 0)}

    before = files()
    for command in TRUNCATED_COMMANDS:
        capsys.readouterr()
        assert main.main([*command, "--project", str(env.project)]) == FAILED, command
        out, err = capsys.readouterr()
        assert err == f"octant: {env.database} is not a readable Octant database (damaged or another kind of " \
                      "file); restore it from a backup or choose another project folder.\n", (command, err)
    assert files() == before


def test_an_emptied_database_without_backups_says_restore_or_init_and_init_then_works(env, capsys):
    # Trying the product: `status` on an emptied octant.sqlite said "create a project with init", and
    # `init` then said the folder "already holds an Octant project": no way out in either sentence.
    env.database.write_bytes(b"")
    capsys.readouterr()
    assert main.main(["status", "--project", str(env.project)]) == FAILED
    err = capsys.readouterr().err
    assert err == (f"octant: {env.database} is empty (no project in it): put back a backup of it with `python "
                   f"main.py restore BACKUP --project {env.project}`, or start a new project there with "
                   f"`python main.py init {env.project} --admin NAME`.\n")
    assert main.main(["init", str(env.project), "--admin", "Boss"]) == 0
    assert main.main(["status", "--project", str(env.project)]) == 0


def test_init_refuses_an_empty_database_file_whose_log_holds_a_project(env):
    env.database.with_name("octant.sqlite-wal").write_bytes(b"pages not yet checkpointed")
    env.database.write_bytes(b"")
    assert main.main(["init", str(env.project), "--admin", "Boss"]) == FAILED
    assert env.database.with_name("octant.sqlite-wal").read_bytes() == b"pages not yet checkpointed"


def test_an_emptied_database_beside_backups_says_to_restore_not_to_start_again(env, capsys):
    (env.project / "backups" / "daily-2026-12-04").mkdir(parents=True)
    env.database.write_bytes(b"")
    for command in (["status"], ["assign"]):
        capsys.readouterr()
        assert main.main([*command, "--project", str(env.project)]) == FAILED
        err = capsys.readouterr().err
        assert err.startswith(f"octant: {env.database} is empty, but this folder has backups: restore the newest "
                              "with `python main.py restore ") and err.count("\n") == 1 and "init" not in err, err
    assert env.database.read_bytes() == b""
