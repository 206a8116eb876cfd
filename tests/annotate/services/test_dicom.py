"""Fundus photographs exported as DICOM (modality OP) import and read like JPEGs."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from annotate.services.importer import import_images
from annotate.services.photos import image_size, read_fundus
from storage.errors import BadImageError
from tests.annotate.dicom_files import write_dicom
from tests.annotate.fundus import synthetic_fundus

pydicom = pytest.importorskip("pydicom")


def test_a_dicom_photo_reads_as_the_same_bgr_pixels(tmp_path):
    bgr = synthetic_fundus(96, 64, 48, 32, 55)
    path = write_dicom(tmp_path / "eye.dcm", bgr[:, :, ::-1])
    assert image_size(path) == (96, 64)
    assert np.array_equal(read_fundus(path), bgr)
    assert read_fundus(path, reduce=2).shape == (32, 48, 3)


def test_dicom_photos_import_with_their_field_of_view(tmp_project, tmp_path):
    (tmp_path / "in").mkdir()
    write_dicom(tmp_path / "in" / "a.dcm", synthetic_fundus(96, 64, 48, 32, 55)[:, :, ::-1])
    report = import_images(tmp_project, [tmp_path / "in"])
    assert len(report.added) == 1 and not report.failed


def test_without_pydicom_a_dicom_file_asks_for_the_extra(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "eye.dcm", synthetic_fundus(32, 32, 16, 16, 15)[:, :, ::-1])
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(BadImageError, match=r"\[dicom\]"):
        read_fundus(path)
