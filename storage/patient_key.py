"""The project's patient key: the secret behind the keyed-hash pseudonyms of patients.

DICOM photographs name their patient; Octant stores instead ``HMAC-SHA256(key, identity)``
(``patient_pseudonym``), so one patient's photos are linked without the name, ID or birth date
ever being stored. The key is 32 random bytes in ``<project>/patient.key``, created once with
owner-only permissions (0600). Without the key a pseudonym cannot be tested against a guessed
patient ID; whoever holds the key and the database can, so the key stays with the project and
is never exported. Losing it only means that photos imported later get new pseudonyms.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from storage.errors import OctantError

KEY_FILENAME = "patient.key"
KEY_BYTES = 32
PSEUDONYM_PREFIX = "P-"
PSEUDONYM_HEX_DIGITS = 24   # 96 bits: no two patients of any clinic collide


def patient_key_path(project_root: Path | str) -> Path:
    return Path(project_root) / KEY_FILENAME


def load_or_create_patient_key(project_root: Path | str) -> bytes:
    """The project's key, created (owner read/write only) on first use."""
    path = patient_key_path(project_root)
    try:
        # O_EXCL: two workstations importing at once cannot both create (and differ on) the key.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    except OSError as error:
        raise OctantError(f"Cannot create the patient key {path} ({error.strerror}); "
                          "check that the project folder is writable.") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise OctantError(f"The patient key {path} is damaged; restore it from a backup of the project "
                          "(without it, patients' photos cannot be linked to those imported before).")
    return key


def patient_pseudonym(key: bytes, identity: str) -> str:
    """The stored stand-in for a patient identity (e.g. issuer and patient ID)."""
    digest = hmac.new(key, identity.encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_DIGITS]


def keyed_uid(key: bytes, uid: str) -> str:
    """A DICOM UID standing in for ``uid``: the same within a project (studies and series stay
    linked), unrelated to the original without the key. "2.25." + a decimal integer is the
    standard's UUID-derived form (PS3.5 B.2), at most 64 characters."""
    digest = hmac.new(key, b"uid:" + uid.encode("ascii", "replace"), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))
