"""The demo project: six real IDRiD photographs, three readers assigned to each, a reviewer.

The photographs ship in ``annotate/services/demo_images`` (IDRiD, Porwal et al. 2018, CC BY 4.0; see its
ATTRIBUTION.md). Making the project is idempotent: an existing demo folder is reused as it is,
so a reader's labels survive a restart of ``python main.py gui --demo``.
"""
from __future__ import annotations

from pathlib import Path

from annotate.services.importer import import_images
from storage.assignment import assign_readers
from storage.project import create_project
from storage.readers import Role, add_reader

DEMO_IMAGES = Path(__file__).resolve().parent / "demo_images"
DEMO_NAME = "Demo: IDRiD photographs (CC BY 4.0)"
DEMO_READERS = (
    ("Dr Amara Okafor", Role.OPHTHALMOLOGIST),
    ("Dr Lena Brandt", Role.OPHTHALMOLOGIST),
    ("Dr Kenji Sato", Role.OPHTHALMOLOGIST),
    ("Dr Priya Raman", Role.REVIEWER),
)


def create_demo_project(folder: str | Path) -> Path:
    """Create (or reuse) the demo project in ``folder`` and return the folder."""
    folder = Path(folder).expanduser()
    if (folder / "octant.sqlite").is_file():
        return folder
    with create_project(folder, name=DEMO_NAME) as project:
        report = import_images(project, [DEMO_IMAGES], split="train", copy=True)
        if report.failed:  # the shipped photos are known good; a failure means a damaged install
            path, reason = report.failed[0]
            raise RuntimeError(f"demo photograph {path} could not be read: {reason}")
        for name, role in DEMO_READERS:
            add_reader(project.database, name, role=role)
        assign_readers(project.database, roles_by_split={"train": [Role.OPHTHALMOLOGIST.value]})
    return folder
