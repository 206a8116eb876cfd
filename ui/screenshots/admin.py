"""File → Readers and sets… rendered offscreen (``screenshot``'s 9-readers.png and 10-sets.png),
as the project's first admin sees it; nothing is changed (no action is run)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from storage.project import ProjectHandle
from storage.readers import ReaderInfo, Role, list_readers
from ui.project_admin import ProjectAdminDialog


def _grab(widget, path: Path) -> Path:
    QApplication.processEvents()
    widget.grab().save(str(path))
    return path


def admin_dialog_screenshots(project: ProjectHandle, out: Path, size: tuple[int, int] = (1600, 1000),
                             viewer: ReaderInfo | None = None) -> list[Path]:
    """The readers tab (a reader selected) and the sets tab (two photos selected), the dialog at
    ``size``, as ``viewer`` when given (none unless they are an admin), else as the project's first
    admin (none when it has no admin)."""
    readers = list_readers(project.database)
    admin = viewer or next((r for r in readers if r.role is Role.ADMIN), None)
    if admin is None or admin.role is not Role.ADMIN:
        return []
    dialog = ProjectAdminDialog(project, admin.id)
    dialog.resize(*size)
    dialog.show()
    others = [r for r in readers if r.role is not Role.ADMIN]
    if others:
        dialog.select_reader(others[0].name)
    paths = [_grab(dialog, Path(out) / "9-readers.png")]
    dialog.tabs.setCurrentIndex(1)
    dialog.select_photos([image.id for image in dialog.photo_rows[:2]])
    paths.append(_grab(dialog, Path(out) / "10-sets.png"))
    dialog.close()
    dialog.deleteLater()
    QApplication.processEvents()
    return paths
