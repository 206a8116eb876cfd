"""The demo project for ``gui --demo`` and ``screenshot``: made once, then reopened.

``annotate.demo.create_demo_project`` makes it when that module is present; otherwise a plain
project is built here from the six IDRiD photos shipped in ``annotate/demo_images`` (CC BY 4.0,
see its ATTRIBUTION.md) with three readers, each assigned every photo.
"""
from __future__ import annotations

from pathlib import Path

from storage.assignment import assign_readers
from storage.project import create_project
from storage.readers import add_reader

DEMO_IMAGES = Path(__file__).resolve().parents[1] / "annotate" / "demo_images"
DEMO_READERS = ("Dr Amara Okafor", "Dr Lena Brandt", "Dr Kenji Sato")


def demo_project(folder: Path) -> Path:
    folder = Path(folder).expanduser()
    if (folder / "octant.sqlite").is_file():
        return folder
    try:
        from annotate.demo import create_demo_project
    except ModuleNotFoundError as error:
        if error.name != "annotate.demo":
            raise
    else:
        return Path(create_demo_project(folder))
    from annotate.importer import import_images

    with create_project(folder, name="Demo (IDRiD photos, CC BY 4.0)") as project:
        import_images(project, [DEMO_IMAGES], copy=True)
        for name in DEMO_READERS:
            add_reader(project.database, name, role="ophthalmologist")
        assign_readers(project.database, readers_per_image=len(DEMO_READERS))
    return folder
