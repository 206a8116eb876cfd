"""Tiny ophthalmic-photography DICOM files for the tests, written with pydicom (the ``dicom`` extra)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

OPHTHALMIC_PHOTOGRAPHY_8_BIT = "1.2.840.10008.5.1.4.1.1.77.1.5.1"


def write_dicom(path: Path | str, rgb: np.ndarray, **attributes) -> Path:
    """An uncompressed RGB ophthalmic-photography DICOM file, as a fundus camera exports it.

    ``attributes`` are extra data elements by keyword (``PatientName="Doe^Jane"``)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = OPHTHALMIC_PHOTOGRAPHY_8_BIT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = OPHTHALMIC_PHOTOGRAPHY_8_BIT
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "OP"
    dataset.Rows, dataset.Columns = rgb.shape[:2]
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation, dataset.PlanarConfiguration = 3, "RGB", 0
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = np.ascontiguousarray(rgb).tobytes()
    dataset.save_as(str(path), enforce_file_format=True)
    return Path(path)
