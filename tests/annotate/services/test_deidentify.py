"""DICOM photographs are de-identified on import (docs/dicom.md): nothing that identifies the
patient is stored, a keyed-hash pseudonym links one patient's photos."""
from __future__ import annotations

import stat

import numpy as np
import pytest

from annotate.services.deidentify import RETAINED, deidentify_dicom
from annotate.services.importer import import_images
from annotate.services.photos import read_fundus
from storage.errors import BadImageError
from storage.images import list_images
from storage.patient_key import KEY_FILENAME, load_or_create_patient_key
from tests.annotate.dicom_files import write_dicom
from tests.annotate.fundus import synthetic_fundus

pydicom = pytest.importorskip("pydicom")

SENTINELS = {  # one recognisable identifier per value representation
    "PN": "SECRETX^PATIENT", "LO": "SECRETX", "SH": "SECRETX", "LT": "SECRETX", "ST": "SECRETX",
    "UT": "SECRETX", "UC": "SECRETX", "AE": "SECRETX", "CS": "SECRETX", "UR": "http://secretx",
    "DA": "19450317", "TM": "101112", "DT": "19450317101112", "AS": "077Y", "UI": "1.2.3.4.555666777",
    "IS": "4242424", "DS": "4242424",
}
LEAKS = (b"SECRETX", b"secretx", b"19450317", b"101112", b"077Y", b"555666777", b"4242424")


def identified_everywhere() -> dict:
    """Every standard attribute a fundus photo does not need, holding an identifier: this covers
    every attribute of the basic profile (table E.1-1), sequences, private tags, overlays and curves."""
    from pydicom.datadict import DicomDictionary
    from pydicom.dataset import Dataset

    attributes = {}
    for tag, (vr, _vm, _name, _retired, keyword) in DicomDictionary.items():
        group = tag >> 16
        if not keyword or keyword in RETAINED or group in (0x0000, 0x0002, 0xFFFE, 0x7FE0):
            continue
        if vr == "SQ":
            item = Dataset()
            item.PatientName, item.CodeMeaning = "SECRETX^INSIDE", "SECRETX"
            attributes[keyword] = [item]
        elif vr in SENTINELS:
            attributes[keyword] = SENTINELS[vr]
    return attributes


def write_identified(path, seed=0, **overrides):
    from pydicom.tag import Tag

    bgr = synthetic_fundus(96, 64, 48, 32, 55, seed=seed)
    attributes = identified_everywhere()
    attributes.update(overrides)
    write_dicom(path, bgr[:, :, ::-1], **attributes)
    dataset = pydicom.dcmread(path)
    dataset.add_new(Tag(0x0009, 0x0010), "LO", "SECRETX VENDOR")       # private creator
    dataset.add_new(Tag(0x0009, 0x1001), "LO", "SECRETX private note")
    dataset.add_new(Tag(0x6000, 0x3000), "OB", b"SECRETX!" * 8)         # overlay data
    dataset.add_new(Tag(0x6000, 0x4000), "LT", "SECRETX overlay comment")
    dataset.add_new(Tag(0x5000, 0x3000), "OB", b"SECRETX!" * 2)         # curve data
    dataset.save_as(path)
    assert all(leak in path.read_bytes() for leak in LEAKS)   # the oracle sees what it looks for
    return bgr


def test_every_identifier_of_the_profile_is_removed_and_the_photo_kept(tmp_path):
    bgr = write_identified(tmp_path / "eye.dcm", ImageLaterality="R")
    key = bytes(range(32))
    clean = deidentify_dicom((tmp_path / "eye.dcm").read_bytes(), key, "eye.dcm")
    leaked = [leak for leak in LEAKS if leak in clean.data]
    assert not leaked
    (tmp_path / "clean.dcm").write_bytes(clean.data)
    assert np.array_equal(read_fundus(tmp_path / "clean.dcm"), bgr)
    dataset = pydicom.dcmread(tmp_path / "clean.dcm")
    assert dataset.PatientIdentityRemoved == "YES"
    assert dataset.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert str(dataset.PatientID) == str(dataset.PatientName) == clean.patient and clean.patient.startswith("P-")
    assert dataset.PatientBirthDate == "" and dataset.StudyDate == ""
    assert dataset.SOPInstanceUID.startswith("2.25.") and dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert clean.laterality == "right"
    # Deterministic: the same file and key give the same bytes, so a second import is a duplicate.
    assert deidentify_dicom((tmp_path / "eye.dcm").read_bytes(), key).data == clean.data


def test_the_pseudonym_links_one_patients_photos_and_needs_the_key(tmp_path):
    key, other_key = bytes(32), bytes(range(32))
    photos = {name: write_dicom(tmp_path / f"{name}.dcm", synthetic_fundus(96, 64, 48, 32, 55)[:, :, ::-1],
                                PatientID=pid, PatientName=person)
              for name, pid, person in (("a1", "123", "Doe^Jane"), ("a2", "123", "Doe^Jane"), ("b", "456", "Roe^Rick"))}
    pseudonym = {name: deidentify_dicom(path.read_bytes(), key).patient for name, path in photos.items()}
    assert pseudonym["a1"] == pseudonym["a2"] != pseudonym["b"]
    assert deidentify_dicom(photos["a1"].read_bytes(), other_key).patient != pseudonym["a1"]
    anonymous = write_dicom(tmp_path / "n.dcm", synthetic_fundus(96, 64, 48, 32, 55)[:, :, ::-1])
    assert deidentify_dicom(anonymous.read_bytes(), key).patient is None


def test_burned_in_annotations_are_refused(tmp_path):
    path = write_dicom(tmp_path / "eye.dcm", synthetic_fundus(96, 64, 48, 32, 55)[:, :, ::-1], BurnedInAnnotation="YES")
    with pytest.raises(BadImageError, match="burned into its pixels"):
        deidentify_dicom(path.read_bytes(), bytes(32), "eye.dcm")


def test_import_stores_only_the_deidentified_copy_and_the_pseudonym(tmp_project, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    write_identified(source / "Doe_Jane_SECRETX.dcm", seed=1, PatientID="SECRETX-1")
    write_identified(source / "Doe_Jane_SECRETX_2.dcm", seed=2, PatientID="SECRETX-1")
    write_identified(source / "Roe_SECRETX.dcm", seed=3, PatientID="SECRETX-2")
    report = import_images(tmp_project, [source])
    assert len(report.added) == 3 and not report.failed and report.deidentified == 3
    images = list_images(tmp_project.database)
    assert len({i.patient for i in images}) == 2 and all(i.patient.startswith("P-") for i in images)
    for image in images:   # stored inside the project under a neutral name, free of identifiers
        assert image.path.parent == tmp_project.root / "images" and "SECRETX" not in image.path.name
        assert not [leak for leak in LEAKS if leak in image.path.read_bytes()]
    tmp_project.database.engine.dispose()
    database = (tmp_project.root / "octant.sqlite").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_project.root.glob("octant.sqlite-*"))
    assert not [leak for leak in LEAKS if leak in database]
    key_file = tmp_project.root / KEY_FILENAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    again = import_images(tmp_project, [source])   # the same files: recognised, key unchanged
    assert not again.added and len(again.duplicates) == 3 and key_file.read_bytes() == key


def test_no_export_format_carries_an_identifier(tmp_project, tmp_path):
    from annotate.services.export import FORMATS, export_labels
    from tests.conftest import make_admin

    (tmp_path / "in").mkdir()
    write_identified(tmp_path / "in" / "Doe_SECRETX.dcm", PatientID="SECRETX-1")
    import_images(tmp_project, [tmp_path / "in"])
    admin = make_admin(tmp_project.database)
    from storage.assignment import assign_readers
    from storage.readers import Role, add_reader
    from storage.reading import ReaderSession

    readers = [add_reader(tmp_project.database, f"Dr {n}", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
               for n in "ABC"]
    assign_readers(tmp_project.database)
    photo = list_images(tmp_project.database)[0].id
    for reader in readers:   # final labels, so the photo is in the COCO file too
        session = ReaderSession(tmp_project.database, reader.id)
        session.mark_normal(photo)
        session.mark_done(photo)
    for fmt in FORMATS:
        out = tmp_path / f"out-{fmt}"
        export_labels(tmp_project, out, fmt, admin.id)
        written = out.read_bytes() if out.is_file() else b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
        assert not [leak for leak in LEAKS if leak in written], fmt
        assert fmt not in ("json", "coco") or b"P-" in written   # the pseudonym is there instead


def test_a_damaged_patient_key_stops_with_one_sentence(tmp_path):
    from storage.errors import OctantError

    (tmp_path / KEY_FILENAME).write_text("not a key")
    with pytest.raises(OctantError, match="patient key .* is damaged"):
        load_or_create_patient_key(tmp_path)


def test_a_patients_later_photos_join_the_split_of_the_first(tmp_project, tmp_path):
    from annotate.services.importer import iter_report_lines

    first = write_dicom(tmp_path / "a.dcm", synthetic_fundus(96, 64, 48, 32, 55, seed=1)[:, :, ::-1], PatientID="77")
    import_images(tmp_project, [first], split="test")
    later = tmp_path / "later"
    later.mkdir()
    write_dicom(later / "b.dcm", synthetic_fundus(96, 64, 48, 32, 55, seed=2)[:, :, ::-1], PatientID="77")
    write_dicom(later / "c.dcm", synthetic_fundus(96, 64, 48, 32, 55, seed=3)[:, :, ::-1], PatientID="88")
    report = import_images(tmp_project, [later], split="train")
    splits = {image.patient: image.split for image in list_images(tmp_project.database)}
    assert sorted(splits.values()) == ["test", "train"]          # 77 stays in test, 88 goes to train
    assert [(p.name, kept) for p, kept in report.with_patient] == [("b.dcm", "test")]
    assert any("b.dcm went to the test split" in line for line in iter_report_lines(report))


def test_without_pydicom_a_dicom_import_is_skipped_with_the_extra_named(tmp_project, tmp_path, monkeypatch):
    import sys

    path = write_dicom(tmp_path / "eye.dcm", synthetic_fundus(96, 64, 48, 32, 55)[:, :, ::-1], PatientID="1")
    monkeypatch.setitem(sys.modules, "pydicom", None)
    report = import_images(tmp_project, [path])
    assert not report.added and len(report.failed) == 1 and "[dicom]" in report.failed[0][1]
    assert not list_images(tmp_project.database)
