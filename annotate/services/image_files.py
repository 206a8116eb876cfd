"""The one way photos are found on disk: files named directly, and the image files inside named
folders (searched recursively). Hidden files and folders (a leading dot: ``.thumbnails``, macOS's
``._photo.jpg`` resource forks) are never photos, so both are skipped everywhere: the importer,
pre-segmentation and the benches see the same files.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from storage.errors import NotFoundError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm")


def is_image_name(path: Path | str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def find_image_files(paths: Iterable[str | Path], resolve: bool = True) -> list[Path]:
    """Image files named by ``paths`` (files, or folders searched recursively, each folder's files
    sorted), each once. ``resolve``: returned as absolute paths with links resolved (two names of
    one file count once); otherwise as named. A named file is kept whatever its name (a broken or
    looping link is for the reader of the file to report); a name that does not exist is refused."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            in_folder = []
            for folder, folders, files in os.walk(path):
                folders[:] = [name for name in folders if not is_hidden(name)]
                in_folder += [Path(folder) / name for name in files if is_image_name(name) and not is_hidden(name)]
            found += sorted(in_folder)
        elif path.exists() or path.is_symlink():
            found.append(path)
        else:
            raise NotFoundError(f"{path} does not exist; check the path.")
    return list(dict.fromkeys(map(_resolved, found) if resolve else found))


def other_file_kinds(paths: Iterable[str | Path]) -> Counter[str]:
    """How many files of each suffix (lower case; "" without one) the folders in ``paths`` hold that
    are not photographs by name: said when an import finds nothing (a folder of .bmp or .webp)."""
    kinds: Counter[str] = Counter()
    for path in map(Path, paths):
        if path.is_dir():
            for _folder, folders, files in os.walk(path):
                folders[:] = [name for name in folders if not is_hidden(name)]
                kinds.update(Path(name).suffix.lower() for name in files
                             if not is_image_name(name) and not is_hidden(name))
    return kinds


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):   # a symlink loop: kept as named, reading it says why it fails
        return path.absolute()
