"""Ophthalmic photographs stored as DICOM (``pip install '.[dicom]'``).

Fundus cameras in hospitals often export DICOM (modality OP) rather than JPEG. pydicom is an
optional dependency: without it a DICOM file gets a clear message naming the extra to install.
Colour photographs come as RGB (or YBR, converted by pydicom); monochrome ones are replicated to
three channels so every model and view sees the same BGR uint8 layout as for a JPEG.
"""
from __future__ import annotations

import io

import numpy as np

from storage.errors import BadImageError

# A DICOM Part 10 file: 128-byte preamble, then the magic "DICM".
DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"


def is_dicom(data: bytes) -> bool:
    return data[DICOM_MAGIC_OFFSET:DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC


def require_pydicom(name: str):
    """pydicom, or BadImageError naming the extra to install when it is missing."""
    try:
        import pydicom
    except ModuleNotFoundError:
        raise BadImageError(f"{name} is a DICOM file; install Octant's DICOM support "
                            "(pip install '.[dicom]') to read it.") from None
    return pydicom


def dicom_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) from the DICOM header, without decoding pixels."""
    pydicom = require_pydicom(name)
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        return int(dataset.Columns), int(dataset.Rows)
    except Exception:  # pydicom raises many types for damaged headers
        raise BadImageError(f"{name} is a damaged DICOM file without image size; export it again.") from None


def decode_dicom(data: bytes, name: str) -> np.ndarray:
    """The DICOM photograph as BGR uint8 (h, w, 3)."""
    pydicom = require_pydicom(name)
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        pixels = dataset.pixel_array
        if dataset.get("PhotometricInterpretation", "").startswith("YBR"):
            pixels = pydicom.pixels.convert_color_space(pixels, dataset.PhotometricInterpretation, "RGB")
    except Exception:
        raise BadImageError(f"{name} is a DICOM file whose pixels cannot be decoded (damaged, or a "
                            "compression pydicom cannot read); export it as JPEG or uncompressed DICOM.") from None
    if pixels.ndim == 4:  # a multi-frame series: the first frame is the photograph
        pixels = pixels[0]
    if pixels.dtype != np.uint8:
        top = float(pixels.max()) or 1.0
        pixels = np.clip(pixels.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # RGB -> BGR
