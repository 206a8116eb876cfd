"""Whether a project's SQLite file lies in a network folder, where workstations on several
computers at once can damage it.

SQLite's write-ahead log keeps its index in shared memory on one computer (sqlite.org/wal.html,
"WAL does not work over a network filesystem"): workstations on two computers that open the same
octant.sqlite on a network share (SMB/CIFS, NFS, ...) do not see each other's index, and the
database can be damaged. One workstation at a time is safe; several at once need PostgreSQL.
Linux is told by its mount table, Windows by the drive type; elsewhere nothing is said.
"""
from __future__ import annotations

import sys
from pathlib import Path

NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "ncpfs",
    "fuse.sshfs", "davfs", "fuse.davfs2", "fuse.rclone",
})


def _unescape(field: str) -> str:
    """Mount points in /proc/self/mounts write space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mount_type(path: Path, mounts: str) -> str | None:
    """The file-system type of the mount holding ``path`` (absolute), from a mount table's text."""
    best, kind = -1, None
    target = str(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), fields[2]
    return kind


def _windows_network_drive(path: Path) -> str | None:
    if str(path).startswith("\\\\"):
        return "a network share"
    import ctypes

    DRIVE_REMOTE = 4
    root = f"{path.drive}\\"
    return "a network drive" if ctypes.windll.kernel32.GetDriveTypeW(root) == DRIVE_REMOTE else None   # type: ignore[attr-defined]


def network_filesystem(path: Path) -> str | None:
    """What kind of network folder ``path`` is in ("cifs", "nfs4", "a network drive"), else None."""
    path = Path(path).resolve()
    platform: str = sys.platform   # a plain str: checked on every platform, not narrowed away by mypy
    try:
        if platform.startswith("linux"):
            kind = mount_type(path, Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace"))
            return kind if kind in NETWORK_FILESYSTEMS else None
        if platform == "win32":
            return _windows_network_drive(path)
    except (OSError, AttributeError, ValueError):
        return None
    return None


def several_workstations_warning(kind: str) -> str:
    return (f"This project's database is in a network folder ({kind}): one workstation at a time is safe, but "
            "workstations on several computers at once can damage it (SQLite's write-ahead log works on one "
            "computer only); for several readers at once use PostgreSQL (README, \"Several readers at once\").")
