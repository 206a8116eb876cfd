"""Reading photographs: formats, reduced decoding, sizes, hashes, and damaged files refused."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from annotate.services.photos import (
    decode_fundus,
    image_size,
    is_image_name,
    read_fundus,
    read_photograph,
    sha256_of_file,
)
from storage.errors import BadImageError
from tests.annotate.fundus import synthetic_fundus, write_corrupt_jpeg, write_photo, write_truncated_jpeg


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


def _scan_data_middle(data: bytes) -> int:
    """An offset halfway through the entropy-coded data (after the start-of-scan segment)."""
    start_of_scan = data.index(b"\xff\xda")
    return (start_of_scan + 2 + int.from_bytes(data[start_of_scan + 2:start_of_scan + 4], "big") + len(data)) // 2


def _jpeg(progressive: bool = False) -> bytes:
    ok, data = cv2.imencode(".jpg", synthetic_fundus(640, 480, 320, 240, 300),
                            [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    assert ok
    return data.tobytes()


def _cut_in_the_scan(data: bytes) -> bytes:
    return data[:_scan_data_middle(data)]


def _cut_in_the_scan_with_its_end_marker(data: bytes) -> bytes:
    return data[:_scan_data_middle(data)] + b"\xff\xd9"


def _bytes_flipped_in_the_scan(data: bytes, count: int = 1024) -> bytes:
    middle = _scan_data_middle(data)
    flipped = bytes(byte ^ 0x5A for byte in data[middle:middle + count])
    return data[:middle] + flipped + data[middle + count:]


def _end_marker_missing(data: bytes) -> bytes:
    assert data.endswith(b"\xff\xd9")
    return data[:-2]


DAMAGED_JPEGS = [
    ("cut-in-the-scan", _cut_in_the_scan, "it stops before its end"),
    ("cut-in-the-scan-end-marker-added", _cut_in_the_scan_with_its_end_marker, "garbled in the middle"),
    ("bytes-flipped-in-the-scan", _bytes_flipped_in_the_scan, "garbled in the middle"),
    ("end-marker-missing", _end_marker_missing, "it stops before its end"),
]


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("name, damage, words", DAMAGED_JPEGS, ids=[case[0] for case in DAMAGED_JPEGS])
def test_a_jpeg_damaged_in_mid_stream_is_refused_by_the_photo_check(tmp_path, capfd, progressive, name, damage, words):
    """libjpeg decoded these with a grey-filled part and only printed "Corrupt JPEG data: …" on stderr;
    import, screen and presegment read files through this one check (read_photograph / verify=True)."""
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg(progressive))
    assert read_photograph(good).shape == (480, 640, 3)
    assert read_photograph(good, reduce=4).shape == (120, 160, 3)
    damaged = tmp_path / f"{name}.jpg"
    damaged.write_bytes(damage(good.read_bytes()))
    with pytest.raises(BadImageError, match=words) as caught:
        read_photograph(damaged, reduce=2)
    assert str(caught.value).count(str(damaged)) == 1 and "\n" not in str(caught.value)
    with pytest.raises(BadImageError, match=words):
        decode_fundus(damaged.read_bytes(), damaged.name, verify=True)
    assert "Corrupt JPEG" not in capfd.readouterr().err


def test_the_jpeg_check_leaves_stderr_alone_and_works_on_many_threads_at_once(capfd):
    """The check used to swap the process's stderr (fd 2) for a file while libjpeg decoded:
    whatever another thread printed meanwhile was lost. Now it touches nothing shared."""
    good = _jpeg()
    damaged = _bytes_flipped_in_the_scan(good)

    def outcome(index: int) -> str:
        try:
            decode_fundus(damaged if index % 2 else good, f"photo-{index}.jpg", reduce=8, verify=True)
        except BadImageError as error:
            return str(error)
        return "read"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(outcome, range(16)))
    assert outcomes[0::2] == ["read"] * 8
    assert all("photo-" in text and "garbled in the middle" in text for text in outcomes[1::2])
    assert capfd.readouterr().err == ""


def test_the_jpeg_check_refuses_exactly_what_libjpeg_calls_corrupt(capfd):
    """A few damaged bytes can leave a stream libjpeg decodes without noticing (JPEG has no checksum:
    such a photo shows a garbled patch, not a grey part); whatever libjpeg does notice, and prints
    as "Corrupt JPEG data" or "Premature end", the check refuses, and nothing else."""
    good = _jpeg()
    start = good.index(b"\xff\xda") + 20
    rng = np.random.default_rng(3)
    noticed = 0
    for _ in range(24):
        place, count = int(rng.integers(start, len(good) - 1100)), int(rng.choice([1, 16, 256]))
        damaged = good[:place] + rng.integers(0, 256, count, np.uint8).tobytes() + good[place + count:]
        capfd.readouterr()
        cv2.imdecode(np.frombuffer(damaged, np.uint8), cv2.IMREAD_COLOR)   # libjpeg prints on fd 2
        libjpeg_warned = "JPEG" in capfd.readouterr().err
        try:
            decode_fundus(damaged, "d.jpg", reduce=8, verify=True)
            was_refused = False
        except BadImageError:
            was_refused = True
        assert was_refused == libjpeg_warned
        noticed += libjpeg_warned
    assert 0 < noticed < 24   # both kinds were tried


def test_a_photo_read_with_its_imported_hash_is_refused_once_the_file_changed(tmp_path):
    path = write_photo(tmp_path / "a.png", size=(96, 64))
    imported = sha256_of_file(path)
    assert read_fundus(path, sha256=imported).shape == (64, 96, 3)
    write_photo(path, size=(96, 64), seed=1)   # another photograph under the same name
    with pytest.raises(BadImageError, match="has changed since it was imported"):
        read_fundus(path, sha256=imported)
    corrupt = write_corrupt_jpeg(tmp_path / "c.jpg")   # damage keeps its own sentence, hash or not
    with pytest.raises(BadImageError, match="damaged JPEG"):
        read_fundus(corrupt, sha256=imported)
