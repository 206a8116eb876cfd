"""Where Octant keeps what it writes, and where it finds the public data sets.

Nothing is ever written into the source tree at run time:
- a project's own caches (patients' photos cropped and resized, structure maps) live in the
  project folder (``project_cache_dir``), so they travel and are deleted with the project;
- caches of the public training sets go to the user's cache folder (``public_cache_dir``:
  ``$OCTANT_CACHE_DIR``, else platformdirs' ``user_cache_dir("octant")``, e.g. ``~/.cache/octant``);
- the demo project, the log and training runs made without a project go to the user's data folder
  (``user_data_folder``: ``$OCTANT_DATA_DIR``, else ``user_data_dir("octant")``, e.g.
  ``~/.local/share/octant``).

The public data sets (DRIVE, IDRiD, Drishti-GS1; only training and benches read them) are found
by ``--data DIR`` or ``$OCTANT_PUBLIC_DATA``, never relative to the checkout.
"""
from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

from storage.errors import NotFoundError

APP_NAME = "octant"
PUBLIC_DATA_VARIABLE = "OCTANT_PUBLIC_DATA"


def user_data_folder() -> Path:
    """The user's Octant data folder (demo project, log, training runs without a project)."""
    return Path(os.environ.get("OCTANT_DATA_DIR") or user_data_dir(APP_NAME, appauthor=False))


def public_cache_dir() -> Path:
    """Caches of the public training sets (rebuilt from the data sets when deleted)."""
    return Path(os.environ.get("OCTANT_CACHE_DIR") or user_cache_dir(APP_NAME, appauthor=False))


def demo_project_dir() -> Path:
    return Path(os.environ.get("OCTANT_DEMO_DIR") or user_data_folder() / "demo")


def default_runs_dir() -> Path:
    """Training runs made without a project (with a project they go under ``<project>/models``)."""
    return user_data_folder() / "runs"


def project_cache_dir(project_root: Path) -> Path:
    """A project's caches of its own photos and maps (safe to delete: rebuilt when needed)."""
    return Path(project_root) / "cache"


def public_data_dir(explicit: str | Path | None = None) -> Path:
    """The folder holding the public data sets: ``explicit`` (``--data``), else $OCTANT_PUBLIC_DATA.

    Raises ``NotFoundError`` with one sentence saying how to point to it when neither names an
    existing folder."""
    chosen = explicit or os.environ.get(PUBLIC_DATA_VARIABLE)
    if not chosen:
        raise NotFoundError(f"Say where the public data sets (DRIVE, IDRiD, Drishti-GS1) are: "
                            f"pass --data DIR or set {PUBLIC_DATA_VARIABLE}=DIR.")
    folder = Path(chosen).expanduser()
    if not folder.is_dir():
        raise NotFoundError(f"The public data folder {folder} does not exist; pass --data DIR or set "
                            f"{PUBLIC_DATA_VARIABLE}=DIR to the folder holding DRIVE, IDRiD and Drishti-GS1.")
    return folder
