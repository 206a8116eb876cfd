"""Reading fundus photographs from disk safely: JPEG, PNG, TIFF and DICOM (``annotate/services/dicom.py``).

Every failure becomes a ``BadImageError`` naming the file and what to do, never a crash or a
silently grey picture. libjpeg only warns about a JPEG cut short or garbled in mid-stream, and
fills the missing part with grey: OpenCV prints that warning on the process's stderr and Pillow
drops it, so ``check_jpeg_stream`` decodes the stream once more with libjpeg-turbo through
simplejpeg, whose strict mode turns every such warning into an error (thread-safe: nothing global
is touched). Import, ``screen`` and ``presegment`` check every JPEG with it (``verify=True``);
other readers (the workstation, training), which read photos import already checked, only when
the file does not end with its end-of-image marker.

A photograph must measure at least ``MIN_PHOTO_SIDE`` pixels on its shorter side (below that no
optic disc can be made out and the networks would enlarge the picture many times) and at most
``MAX_PHOTO_PIXELS`` pixels (no fundus camera comes near; a header claiming more is damaged or a
decompression bomb that would exhaust the memory).
"""
from __future__ import annotations

import errno
import hashlib
import io
import warnings
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import simplejpeg

from annotate.services.dicom import decode_dicom, dicom_size, is_dicom
from annotate.services.image_files import IMAGE_SUFFIXES, is_image_name  # noqa: F401 (re-exported)
from storage.errors import BadImageError

_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
# cv2 decodes JPEGs at 1/2, 1/4, 1/8 scale inside the decoder (3–5× faster than full size).
_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_HASH_CHUNK = 1 << 20
MIN_PHOTO_SIDE = 64              # pixels, shorter side
MAX_PHOTO_PIXELS = 100_000_000   # width × height; widefield cameras reach ~16 MP


class ImageSize(NamedTuple):
    width: int
    height: int


def image_format(data: bytes) -> str | None:
    """"JPEG", "PNG", "TIFF" or "DICOM" from the file's first bytes, else None."""
    for signature, name in _SIGNATURES.items():
        if data.startswith(signature):
            return name
    return "DICOM" if is_dicom(data) else None


def require_image_format(data: bytes, name: str = "image") -> str:
    """The format of ``data``, or BadImageError for an empty file or one that is no photograph."""
    kind = image_format(data)
    if kind is None:
        if not data:
            raise BadImageError(f"{name} is empty; copy the photograph again.")
        raise BadImageError(f"{name} is not a JPEG, PNG, TIFF or DICOM image; remove it or export the photo again.")
    return kind


def sha256_of_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_unchanged(path: Path | str, sha256: str) -> None:
    """Refuse a photo whose file no longer holds what was imported (BadImageError). Photos are
    read where they were imported from; a camera that numbers its files again, or a folder copied
    over, puts another patient's photograph under a known name, and it would be read as this one.
    A file that cannot be read is left to the decoder to explain."""
    try:
        found = sha256_of_file(path)
    except OSError:
        return
    _refuse_if_changed(path, found, sha256)


def _refuse_if_changed(path: Path | str, found: str, sha256: str) -> None:
    if found != sha256:
        raise BadImageError(f"{path} has changed since it was imported (another photograph under its name, or "
                            "damage); put the original back, or move this file away and import the original again.")


def read_bytes(path: Path | str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadImageError(f"{path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise BadImageError(f"{path} is a folder, not an image; give the photograph's file.") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BadImageError(f"{path} is a symbolic link that leads back to itself (a loop); "
                                "fix or remove the link.") from None
        raise BadImageError(f"{path} cannot be read ({error.strerror}); check that the file is accessible.") from None


def check_jpeg_stream(data: bytes, name: str = "image") -> None:
    """BadImageError for a JPEG that stops before its end or is garbled in mid-stream, which libjpeg
    decodes with a warning and a grey-filled part. The entropy-coded data is decoded whole (at 1/8
    size, in grey: cheap); a stream libjpeg-turbo cannot decode at all is left to the caller's decoder."""
    try:
        colorspace = "CMYK" if simplejpeg.decode_jpeg_header(data)[2] in ("CMYK", "YCCK") else "GRAY"
    except ValueError:
        return

    def decode(strict: bool) -> None:
        simplejpeg.decode_jpeg(data, colorspace=colorspace, min_factor=8, min_height=1, min_width=1, strict=strict)

    try:
        decode(strict=True)
        return
    except ValueError as warning:   # strict: libjpeg's first warning, as its message
        problem = str(warning)
    try:
        decode(strict=False)
    except ValueError:   # an error, not a warning: not damage in mid-stream
        return
    if "Premature end of JPEG file" in problem:
        raise BadImageError(f"{name} is a truncated or damaged JPEG (it stops before its end); "
                            "copy the photograph again from the camera.")
    raise BadImageError(f"{name} is a damaged JPEG (data missing or garbled in the middle); "
                        "copy the photograph again from the camera.")


def check_photo_size(size: tuple[int, int], name: str = "image") -> None:
    """BadImageError for a picture too small to be a fundus photograph or too large to be one."""
    width, height = size
    if width * height > MAX_PHOTO_PIXELS:
        raise BadImageError(f"{name} claims {width} × {height} pixels, more than any fundus camera makes "
                            f"(at most {MAX_PHOTO_PIXELS // 1_000_000} megapixels); it is damaged or not a photograph.")
    if min(width, height) < MIN_PHOTO_SIDE:
        raise BadImageError(f"{name} is only {width} × {height} pixels, too small for a fundus photograph "
                            f"(at least {MIN_PHOTO_SIDE} pixels a side); import the full-size photo.")


def _decode_quietly(buffer: np.ndarray, flag: int) -> np.ndarray | None:
    """cv2.imdecode without OpenCV's own "[ WARN:…]" lines: the caller says what went wrong in one sentence."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        return cv2.imdecode(buffer, flag)
    finally:
        cv2.utils.logging.setLogLevel(level)


def decode_fundus(data: bytes, name: str = "image", reduce: int = 1, verify: bool = False) -> np.ndarray:
    """Decode bytes of a JPEG/PNG/TIFF into BGR uint8, at 1/``reduce`` size (1, 2, 4 or 8).

    ``verify`` refuses a JPEG damaged in mid-stream too (``check_jpeg_stream``); without it only one
    that does not end with its end-of-image marker is checked."""
    if reduce not in _REDUCED_FLAGS:
        raise ValueError(f"reduce must be one of {sorted(_REDUCED_FLAGS)}, not {reduce}")
    kind = require_image_format(data, name)
    image: np.ndarray | None
    if kind == "DICOM":
        image = decode_dicom(data, name)
        if reduce == 1:
            return image
        height, width = image.shape[:2]
        return cv2.resize(image, (max(1, width // reduce), max(1, height // reduce)), interpolation=cv2.INTER_AREA)
    if kind == "JPEG" and (verify or not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")):
        check_jpeg_stream(data, name)
    try:
        image = _decode_quietly(np.frombuffer(data, np.uint8), _REDUCED_FLAGS[reduce])
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        if kind == "TIFF":   # OpenCV reads 8- and 16-bit integer samples only
            raise BadImageError(f"{name} is a TIFF file that cannot be decoded (damaged, or with samples other than "
                                "8- or 16-bit integers); save the photograph again as an 8-bit TIFF, PNG or JPEG.")
        raise BadImageError(f"{name} is a damaged {kind} file that cannot be decoded; copy the photograph again.")
    if image.dtype != np.uint8:  # 16-bit PNG/TIFF
        image = (image / 257).astype(np.uint8) if image.dtype == np.uint16 else cv2.convertScaleAbs(image)
    return image


def read_fundus(path: Path | str, reduce: int = 1, sha256: str | None = None) -> np.ndarray:
    """The photograph at ``path`` as BGR uint8 (h, w, 3), optionally decoded at 1/2, 1/4 or 1/8 size.
    A file whose header claims more than ``MAX_PHOTO_PIXELS`` is refused before it is decoded. With
    ``sha256`` (the imported file's), a file that changed since is refused as ``check_unchanged``
    refuses it, from the bytes already read (not a second read), after decoding so that damage
    keeps its own sentence."""
    data = read_bytes(path)
    refuse_too_many_pixels(data, str(path))
    image = decode_fundus(data, str(path), reduce)
    if sha256 is not None:
        _refuse_if_changed(path, hashlib.sha256(data).hexdigest(), sha256)
    return image


def refuse_too_many_pixels(data: bytes, name: str) -> None:
    """BadImageError, from the header alone, for a picture claiming more pixels than any fundus
    camera makes: import refuses those, but a project's photo can be replaced on disk after it
    was imported, and decoding a 20 000 × 20 000 picture takes gigabytes and, on a worker
    thread, cannot be interrupted. A header that cannot be read is left to the decoder to name."""
    try:
        width, height = size_from_bytes(data, name)
    except BadImageError as error:
        if str(error) == _too_large(name):
            raise
        return
    if width * height > MAX_PHOTO_PIXELS:
        check_photo_size((width, height), name)


def read_photograph(path: Path | str, reduce: int = 1, sha256: str | None = None) -> np.ndarray:
    """A photo file refused exactly as import refuses it (too small or too large for a fundus photograph,
    damaged in mid-stream), for commands that take files rather than project images (``screen``,
    ``presegment``): a 48 × 32 thumbnail or a grey-smeared JPEG must not get findings either. With
    ``sha256``, refused as ``read_fundus`` refuses a changed file, from the bytes already read."""
    data = read_bytes(path)
    check_photo_size(size_from_bytes(data, str(path)), str(path))
    image = decode_fundus(data, str(path), reduce, verify=True)
    if sha256 is not None:
        _refuse_if_changed(path, hashlib.sha256(data).hexdigest(), sha256)
    return image


def checked_photo_size(path: Path | str) -> ImageSize:
    """Width and height from the header, refused (``check_photo_size``) as import refuses them."""
    size = image_size(path)
    check_photo_size(size, str(path))
    return size


def image_size(path: Path | str) -> ImageSize:
    """Width and height from the file header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    if Path(path).suffix.lower() == ".dcm":
        return size_from_bytes(read_bytes(path), str(path))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # check_photo_size decides
            with Image.open(path) as picture:
                return ImageSize(*picture.size)
    except Image.DecompressionBombError:
        raise BadImageError(_too_large(path)) from None
    except FileNotFoundError:
        raise BadImageError(f"{path} does not exist; check the path.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        if _is_empty_file(path):   # as import says it
            raise BadImageError(f"{path} is empty; copy the photograph again.") from None
        raise BadImageError(f"{path} is not a readable JPEG, PNG or TIFF image; remove it or export the photo again.") from None


def _is_empty_file(path: Path | str) -> bool:
    try:
        return Path(path).stat().st_size == 0
    except OSError:
        return False


def size_from_bytes(data: bytes, name: str = "image") -> ImageSize:
    """Width and height of an image held in memory, from its header."""
    from PIL import Image, UnidentifiedImageError

    if require_image_format(data, name) == "DICOM":
        return ImageSize(*dicom_size(data, name))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # check_photo_size decides
            with Image.open(io.BytesIO(data)) as picture:
                return ImageSize(*picture.size)
    except Image.DecompressionBombError:
        raise BadImageError(_too_large(name)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadImageError(f"{name} is not a readable JPEG, PNG or TIFF image; remove it or export the photo again.") from None


def _too_large(name) -> str:
    return (f"{name} claims more pixels than any fundus camera makes (at most {MAX_PHOTO_PIXELS // 1_000_000} "
            "megapixels); it is damaged or not a photograph.")
