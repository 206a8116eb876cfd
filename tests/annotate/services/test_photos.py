"""Reading photographs: formats, reduced decoding, sizes, hashes, and damaged files refused."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from annotate.services.photos import decode_fundus, image_size, is_image_name, read_fundus, sha256_of_file
from storage.errors import BadImageError
from tests.annotate.fundus import write_corrupt_jpeg, write_photo, write_truncated_jpeg


@pytest.mark.parametrize("name", ["a.jpg", "b.png", "c.tif", "d.TIFF"])
def test_reads_jpeg_png_and_tiff_as_bgr(tmp_path, name):
    path = write_photo(tmp_path / name, size=(96, 64))
    image = read_fundus(path)
    assert image.shape == (64, 96, 3) and image.dtype.name == "uint8"
    assert image_size(path) == (96, 64) and image_size(path).width == 96


def test_reduced_decode_is_smaller(tmp_path):
    path = write_photo(tmp_path / "a.jpg", size=(96, 64))
    assert read_fundus(path, reduce=4).shape == (16, 24, 3)
    with pytest.raises(ValueError):
        read_fundus(path, reduce=3)


def test_hash_is_sha256_of_the_bytes(tmp_path):
    path = write_photo(tmp_path / "a.png")
    assert sha256_of_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: write_truncated_jpeg(p / "t.jpg"), "truncated"),
        (lambda p: write_corrupt_jpeg(p / "c.jpg"), "damaged JPEG"),
        (lambda p: (p / "x.png").write_text("not a photo") and p / "x.png", "not a JPEG, PNG, TIFF or DICOM"),
        (lambda p: (p / "e.jpg").write_bytes(b"") or p / "e.jpg", "empty"),
        (lambda p: p / "missing.jpg", "does not exist"),
        (lambda p: (p / "folder.jpg").mkdir() or p / "folder.jpg", "folder"),
    ],
)
def test_damaged_or_wrong_files_are_refused_with_one_sentence(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(BadImageError, match=words) as caught:
        read_fundus(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_damaged_png_is_refused(tmp_path):
    data = write_photo(tmp_path / "a.png").read_bytes()
    with pytest.raises(BadImageError, match="damaged PNG"):
        decode_fundus(data[: len(data) // 2], "a.png")


def test_jpeg_with_data_after_its_end_marker_is_accepted(tmp_path):
    data = write_photo(tmp_path / "a.jpg").read_bytes() + b"camera trailer"
    assert decode_fundus(data, "a.jpg").shape == (64, 96, 3)


def test_image_names():
    assert is_image_name("x/IMG.JPG") and is_image_name("a.tiff") and not is_image_name("notes.txt")


def test_a_tiff_of_float_samples_is_one_sentence_without_opencv_warnings(tmp_path, capfd):
    """OpenCV printed "[ WARN:…] TIFFRGBAImageOK: Sorry, can not handle images with 32-bit samples"
    beside the sentence, which called the file damaged."""
    from PIL import Image

    path = tmp_path / "float.tif"
    Image.fromarray(np.full((80, 100), 0.5, np.float32)).save(path)
    with pytest.raises(BadImageError, match="samples other than 8- or 16-bit integers"):
        decode_fundus(path.read_bytes(), "float.tif")
    assert "WARN" not in capfd.readouterr().err
