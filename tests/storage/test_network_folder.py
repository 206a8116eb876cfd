"""A SQLite project in a network folder is recognised from the mount table (Linux), so the
workstation can say that several computers at once would damage it."""
from __future__ import annotations

from pathlib import Path

from storage.network_folder import mount_type, network_filesystem

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
//nas/clinic /mnt/clinic cifs rw,vers=3.1.1 0 0
nas:/export /mnt/clinic/nfs\\040share nfs4 rw 0 0
tmpfs /mnt/clinicx tmpfs rw 0 0
"""


def test_the_mount_holding_a_path_is_the_longest_mount_point_above_it():
    assert mount_type(Path("/mnt/clinic/project/octant.sqlite"), MOUNTS) == "cifs"
    assert mount_type(Path("/mnt/clinic/nfs share/project/octant.sqlite"), MOUNTS) == "nfs4"   # \\040: a space
    assert mount_type(Path("/mnt/clinicx/octant.sqlite"), MOUNTS) == "tmpfs"   # not inside /mnt/clinic
    assert mount_type(Path("/home/dr/octant.sqlite"), MOUNTS) == "ext4"


def test_a_local_folder_is_no_network_folder(tmp_path):
    assert network_filesystem(tmp_path / "octant.sqlite") is None
