"""The demo project: six real IDRiD photographs, three readers assigned to each, a reviewer, an admin.

The readers have no PIN, so ``python main.py gui --demo`` opens as the first of them at once; the
reviewer and the admin sign in with ``DEMO_PASSPHRASE``, which is public (printed by ``gui --demo``,
written in README.md and docs/roles.md): a demo project holds no patient's data and must never
be used for real reading.

The photographs ship in ``annotate/services/demo_images`` (IDRiD, Porwal et al. 2018, CC BY 4.0; see its
ATTRIBUTION.md). Making the project is idempotent: an existing demo folder is reused as it is,
so a reader's labels survive a restart of ``python main.py gui --demo``.
"""
from __future__ import annotations

from pathlib import Path

from annotate.services.importer import import_images
from storage.assignment import assign_readers
from storage.project import create_project, open_project
from storage.readers import Role, add_reader, create_first_admin, has_admin

DEMO_IMAGES = Path(__file__).resolve().parent / "demo_images"
DEMO_NAME = "Demo: IDRiD photographs (CC BY 4.0)"
DEMO_READERS = (
    ("Dr Amara Okafor", Role.OPHTHALMOLOGIST),
    ("Dr Lena Brandt", Role.OPHTHALMOLOGIST),
    ("Dr Kenji Sato", Role.OPHTHALMOLOGIST),
    ("Dr Priya Raman", Role.REVIEWER),
)
DEMO_ADMIN = "Demo admin"
DEMO_PASSPHRASE = "octant demo passphrase"   # public on purpose; see the module docstring


def create_demo_project(folder: str | Path) -> Path:
    """Create (or reuse) the demo project in ``folder`` and return the folder."""
    folder = Path(folder).expanduser()
    if (folder / "octant.sqlite").is_file():
        with open_project(folder) as project:   # a demo made before admins existed gets one
            if not has_admin(project.database):
                create_first_admin(project.database, DEMO_ADMIN, DEMO_PASSPHRASE)
        return folder
    with create_project(folder, name=DEMO_NAME) as project:
        report = import_images(project, [DEMO_IMAGES], split="train", copy=True)
        if report.failed:  # the shipped photos are known good; a failure means a damaged install
            path, reason = report.failed[0]
            raise RuntimeError(f"demo photograph {path} could not be read: {reason}")
        admin = create_first_admin(project.database, DEMO_ADMIN, DEMO_PASSPHRASE)
        for name, role in DEMO_READERS:
            pin = DEMO_PASSPHRASE if role is Role.REVIEWER else None
            add_reader(project.database, name, role=role, pin=pin, acting_reader_id=admin.id)
        assign_readers(project.database, roles_by_split={"train": [Role.OPHTHALMOLOGIST.value]})
    return folder
