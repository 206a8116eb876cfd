"""De-identifying DICOM photographs on import (DICOM PS3.15 Annex E, basic profile, table E.1-1).

What Octant stores of a DICOM file is a new file holding only the attributes a fundus photograph
needs (``RETAINED``: pixel description and pixels, modality, eye, camera make and model). Every
attribute the basic profile names — names, IDs, dates, times, addresses, institutions, devices'
serial numbers, comments, private tags, overlays, curves, sequences — is therefore removed, and so
is anything a vendor may have added. What the profile requires to be present is replaced:

- patient name and patient ID: the keyed-hash pseudonym (``storage.patient_key``), so that one
  patient's photos stay linked; birth date, sex, study date and time, accession number, study ID
  and referring physician: empty;
- study, series and SOP instance UIDs (and frame of reference): keyed-hash UIDs (``2.25.…``), the
  same for the same original within a project;
- Patient Identity Removed = YES, with De-identification Method and its code (113100, basic
  application confidentiality profile).

The result is deterministic (same file, same key: same bytes, hence the same SHA-256), so
importing a file twice is still recognised. A photograph whose pixels carry burned-in text
(Burned In Annotation = YES) is refused: the profile cannot clean pixels. ``docs/dicom.md`` lists
exactly what is kept and replaced.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from annotate.services.dicom import require_pydicom
from storage.errors import BadImageError
from storage.patient_key import keyed_uid, patient_pseudonym

# What a fundus photograph needs, none of which the basic profile removes or replaces.
RETAINED = (
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "Modality", "Manufacturer", "ManufacturerModelName",
    "SeriesNumber", "InstanceNumber", "PatientOrientation", "ImageLaterality", "Laterality",
    "BurnedInAnnotation", "RecognizableVisualFeatures", "LossyImageCompression", "LossyImageCompressionRatio",
    "LossyImageCompressionMethod", "PresentationLUTShape", "SamplesPerPixel", "PhotometricInterpretation",
    "PlanarConfiguration", "NumberOfFrames", "FrameIncrementPointer", "Rows", "Columns", "PixelSpacing",
    "PixelAspectRatio", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "ICCProfile",
    "ColorSpace", "HorizontalFieldOfView", "ExtendedOffsetTable", "ExtendedOffsetTableLengths", "PixelData",
)
# Type 2 attributes of the patient and study modules: kept present, emptied (profile action Z).
EMPTIED = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "AccessionNumber",
           "ReferringPhysicianName", "StudyID")
# Replaced by keyed-hash UIDs (action U); SOP Instance UID also names the file (meta header).
REPLACED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
METHOD = "DICOM PS3.15 E.1-1 basic profile (Octant)"   # LO: at most 64 characters
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
_EYES = {"R": "right", "L": "left"}


@dataclass(frozen=True)
class DeidentifiedDicom:
    data: bytes                 # the DICOM file to store
    patient: str | None         # pseudonym, None when the file names no patient
    laterality: str | None      # "left" / "right" from the file's eye attributes, else None


def patient_identity(dataset) -> str | None:
    """What identifies the patient: the issuer and patient ID, else name and birth date."""
    patient_id = str(dataset.get("PatientID", "") or "").strip()
    if patient_id:
        return "id\x1f" + str(dataset.get("IssuerOfPatientID", "") or "").strip() + "\x1f" + patient_id
    name = str(dataset.get("PatientName", "") or "").strip()
    if name:
        return "name\x1f" + name + "\x1f" + str(dataset.get("PatientBirthDate", "") or "").strip()
    return None


def deidentify_dicom(data: bytes, key: bytes, name: str = "image") -> DeidentifiedDicom:
    """The file to store in place of the DICOM ``data``, its patient's pseudonym and eye."""
    pydicom = require_pydicom(name)
    from pydicom.dataset import Dataset, FileMetaDataset

    try:
        source = pydicom.dcmread(io.BytesIO(data))
        transfer_syntax = source.file_meta.TransferSyntaxUID
    except Exception:  # pydicom raises many types for damaged files
        raise BadImageError(f"{name} is a damaged DICOM file; export it again from the camera.") from None
    if str(source.get("BurnedInAnnotation", "")).upper() == "YES":
        raise BadImageError(f"{name} has patient details burned into its pixels (Burned In Annotation: YES), "
                            "which de-identification cannot remove; export it from the camera without them.")
    if "PixelData" not in source:
        raise BadImageError(f"{name} is a DICOM file without a picture; export the photograph itself.")
    identity = patient_identity(source)
    pseudonym = patient_pseudonym(key, identity) if identity is not None else None

    clean = Dataset()
    for keyword in RETAINED:
        if keyword in source:
            clean[keyword] = source[keyword]
    for keyword in EMPTIED:
        setattr(clean, keyword, "")
    clean.PatientName = clean.PatientID = pseudonym or ""
    for keyword in REPLACED_UIDS:
        if keyword in source:
            setattr(clean, keyword, keyed_uid(key, str(source.get(keyword))))
    if "SOPInstanceUID" not in clean:   # required; derived from the pixels so it is stable
        clean.SOPInstanceUID = keyed_uid(key, "pixels:" + hashlib.sha256(source.PixelData).hexdigest())
    clean.PatientIdentityRemoved = "YES"
    clean.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE_CODE
    clean.DeidentificationMethodCodeSequence = [code]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = clean.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.77.1.5.1")
    meta.MediaStorageSOPInstanceUID = clean.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    clean.file_meta = meta
    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, clean, enforce_file_format=True)
    except Exception:
        raise BadImageError(f"{name} is a DICOM file that cannot be rewritten without its identifiers "
                            "(damaged or unusual encoding); export it as JPEG or uncompressed DICOM.") from None
    eye = _EYES.get(str(source.get("ImageLaterality", "") or source.get("Laterality", "")).upper())
    return DeidentifiedDicom(buffer.getvalue(), pseudonym, eye)
