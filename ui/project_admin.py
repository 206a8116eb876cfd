"""File → Readers and sets…: the admin's actions at the workstation (admins only).

Two tabs: the project's readers (role, credential, active or retired) with Add reader…, Change
role…, Retire…, Reinstate… and Reset PIN…; and the photos with the set each is in, moved between the
training and test sets. Each action asks the admin's passphrase first (``ui.admin_guard``) and
then calls the same storage function as the command line (``readers add``, ``readers role``, ``readers retire``,
``readers reinstate``, ``readers reset-pin``, ``split``), which checks the admin again and
writes the audit event. Problems are one sentence under the tables; nothing is changed then.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from storage import credentials
from storage.catalogue import SPLITS
from storage.errors import OctantError
from storage.images import list_images, move_images_to_split
from storage.project import ProjectHandle
from storage.readers import (
    REVIEW_ROLES,
    ReaderInfo,
    Role,
    add_reader,
    get_reader,
    list_readers,
    require_admin,
    reset_pin,
    set_reader_active,
    set_role,
)
from ui import message_line
from ui.admin_guard import Prompts, admin_signs_in, ask_new_reader, ask_new_secret
from ui.keyboard_focus import give_keys_back

SET_NAMES = {"train": "training", "test": "test"}
RETIRED_GREY = QColor("#5f6b6d")   # about 5:1 on the white and grey rows: greyed, still legible


def role_text(role: Role) -> str:
    return role.value.replace("_", " ")


def _credential_of(reader: ReaderInfo | None) -> str:
    """The selected reader's credential by its kind where known (an admin's is a passphrase); "PIN"
    for none or one of unknown kind, as the button has always said."""
    return "passphrase" if reader is not None and reader.credential_name == "passphrase" else "PIN"


def _table(headers: list[str], multi: bool = False) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if multi
                           else QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setAlternatingRowColors(True)
    table.setStyleSheet("QTableWidget::item { padding: 0 10px 0 4px; }")   # names do not touch the grid
    return table


def _button(icon: str, text: str, slot) -> QPushButton:
    button = QPushButton(qta.icon(icon), text)
    button.clicked.connect(slot)
    return button


class ProjectAdminDialog(QDialog, Prompts):
    """The readers and the photos' sets of ``project``, changed by the signed-in admin ``admin_id``."""

    def __init__(self, project: ProjectHandle, admin_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.db = project.database
        self.admin: ReaderInfo = get_reader(self.db, admin_id)
        self.setWindowTitle(f"Readers and sets — {project.settings().name}")
        self.setWindowIcon(qta.icon("mdi6.account-cog-outline"))
        self.readers = _table(["Name", "Role", "Credential", "Status"])
        self.readers.itemSelectionChanged.connect(self._update_buttons)
        self.add = _button("mdi6.account-plus-outline", "Add reader…", self.add_reader)
        self.change_role = _button("mdi6.account-convert-outline", "Change role…", self.change_role_of_selected)
        self.retire = _button("mdi6.account-off-outline", "Retire…", lambda: self.set_selected_active(False))
        self.reinstate = _button("mdi6.account-check-outline", "Reinstate…", lambda: self.set_selected_active(True))
        self.reset = _button("mdi6.lock-reset", "Reset PIN…", self.reset_pin_of_selected)
        self.photos = _table(["Number", "Photo", "Eye", "Set"], multi=True)
        self.photos.itemSelectionChanged.connect(self._update_buttons)
        self.to_train = _button("mdi6.school-outline", "Move to the training set…", lambda: self.move_selected("train"))
        self.to_test = _button("mdi6.clipboard-check-outline", "Move to the test set…", lambda: self.move_selected("test"))
        self.set_counts = QLabel("")
        self.tabs = QTabWidget()
        self.tabs.addTab(self._page(self.readers, QLabel(
            "Retired readers keep their labels but can no longer sign in or save; reinstating them gives "
            "their access back. Each change asks your passphrase and is recorded in the audit trail."),
            [self.add, self.change_role, self.retire, self.reinstate, self.reset]), qta.icon("mdi6.account-group-outline"),
            "Readers")
        self.tabs.addTab(self._page(self.photos, self.set_counts, [self.to_train, self.to_test]),
                         qta.icon("mdi6.image-multiple-outline"), "Training and test sets")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Signed in as {self.admin.name} (admin)."))
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)
        layout.addWidget(close)
        self.resize(820, 560)
        self.refresh()

    @staticmethod
    def _page(table: QTableWidget, note: QLabel, buttons: list[QPushButton]) -> QWidget:
        page = QWidget()
        note.setWordWrap(True)
        column = QVBoxLayout()
        for button in buttons:
            column.addWidget(button)
        column.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(table, 1)
        row.addLayout(column)
        layout = QVBoxLayout(page)
        layout.addWidget(note)
        layout.addLayout(row, 1)
        return page

    # --- what is shown ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload both tables from the database, keeping the selected rows."""
        chosen_reader, chosen_photos = self.selected_reader(), set(self.selected_photos())
        self.reader_rows = list_readers(self.db, include_inactive=True)
        self.readers.setRowCount(len(self.reader_rows))
        for row, reader in enumerate(self.reader_rows):
            cells = [reader.name, role_text(reader.role), reader.credential_name if reader.has_pin else "none", "active" if reader.active else "retired"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if not reader.active:
                    item.setForeground(RETIRED_GREY)
                self.readers.setItem(row, column, item)
            if chosen_reader is not None and reader.id == chosen_reader.id:
                self.readers.selectRow(row)
        self.photo_rows = list_images(self.db)
        self.photos.setRowCount(len(self.photo_rows))
        for row, image in enumerate(self.photo_rows):
            cells = [str(image.id), image.path.name, image.laterality or "—", SET_NAMES[image.split]]
            for column, text in enumerate(cells):
                self.photos.setItem(row, column, QTableWidgetItem(text))
        self.select_photos(chosen_photos)
        counts = {split: sum(image.split == split for image in self.photo_rows) for split in SPLITS}
        self.set_counts.setText(" · ".join(f"{counts[split]} in the {SET_NAMES[split]} set" for split in SPLITS)
                                + ". Select photos (Shift or Ctrl for several) and move them; each move asks "
                                  "your passphrase and is recorded in the audit trail.")
        self._update_buttons()

    def selected_reader(self) -> ReaderInfo | None:
        rows = {index.row() for index in self.readers.selectedIndexes()}
        return self.reader_rows[min(rows)] if rows and getattr(self, "reader_rows", None) else None

    def selected_photos(self) -> list[int]:
        rows = sorted({index.row() for index in self.photos.selectedIndexes()})
        return [self.photo_rows[row].id for row in rows] if getattr(self, "photo_rows", None) else []

    def select_reader(self, name: str) -> None:
        for row, reader in enumerate(self.reader_rows):
            if reader.name == name:
                self.readers.selectRow(row)

    def select_photos(self, image_ids: Iterable[int]) -> None:
        self.photos.clearSelection()
        wanted = set(image_ids)
        for row, image in enumerate(self.photo_rows):
            if image.id in wanted:
                self.photos.selectionModel().select(
                    self.photos.model().index(row, 0),
                    self.photos.selectionModel().SelectionFlag.Select
                    | self.photos.selectionModel().SelectionFlag.Rows)

    def _update_buttons(self) -> None:
        reader = self.selected_reader()
        for button in (self.change_role, self.reset):
            button.setEnabled(reader is not None)
        self.reset.setText(f"Reset {_credential_of(reader)}…")
        self.retire.setEnabled(reader is not None and reader.active)
        self.reinstate.setEnabled(reader is not None and not reader.active)
        photos = bool(self.selected_photos())
        self.to_train.setEnabled(photos)
        self.to_test.setEnabled(photos)

    def show_done(self, text: str) -> None:
        message_line.show_done(self.message, text)

    def show_problem(self, text: str) -> None:
        message_line.show_problem(self.message, text)

    # --- the actions --------------------------------------------------------------------------
    def _as_admin(self, doing: str, action: Callable[[int], str]) -> bool:
        """Ask the passphrase for ``doing``, then run ``action(admin_id)``; its sentence (or the
        problem's) is shown. True when it was done."""
        try:
            admin_id = admin_signs_in(self.db, self, doing, self.admin)
            if admin_id is None:
                return False
            self.show_done(action(admin_id))
            return True
        except OctantError as error:
            self.show_problem(str(error))
            return False
        finally:
            self.refresh()

    def add_reader(self) -> bool:
        try:
            asked = ask_new_reader(self)
        except OctantError as error:
            self.show_problem(str(error))
            return False
        if asked is None:
            return False
        name, role, secret = asked

        def add(admin_id: int) -> str:
            added = add_reader(self.db, name, role, secret, acting_reader_id=admin_id)
            self.refresh()
            self.select_reader(added.name)
            return f"Added {added.name} ({role_text(added.role)}{', with a ' + added.credential_name if added.has_pin else ''})."

        return self._as_admin(f"Adding {name} as {'an' if role is Role.ADMIN else 'a'} {role_text(role)}", add)

    def change_role_of_selected(self) -> bool:
        reader = self.selected_reader()
        if reader is None:
            return False
        roles = [role_text(role) for role in Role]
        chosen = self.ask_choice("Change role", f"New role for {reader.name}:", roles, roles.index(role_text(reader.role)))
        if chosen is None:
            return False
        role = Role.parse(chosen)
        new_secret = None
        try:
            if role is Role.ADMIN or (role in REVIEW_ROLES and not reader.has_pin):   # as `readers role`
                new_secret = ask_new_secret(self, "Change role", reader.name, role)
                if new_secret is None:
                    return False
        except OctantError as error:
            self.show_problem(str(error))
            return False

        def change(admin_id: int) -> str:
            set_role(self.db, reader.id, role, acting_reader_id=admin_id, new_pin=new_secret)
            return f"{reader.name} is now {role_text(role)}."

        return self._as_admin(f"Making {reader.name} {'an' if role is Role.ADMIN else 'a'} {role_text(role)}", change)

    def set_selected_active(self, active: bool) -> bool:
        reader = self.selected_reader()
        if reader is None:
            return False
        doing = (f"Reinstating {reader.name} (they can sign in and save again)" if active else
                 f"Retiring {reader.name} (their labels stay; they can no longer sign in or save)")
        done = (f"{reader.name} is back: they can sign in and save again." if active else
                f"{reader.name} is retired: their labels stay, they can no longer sign in or save.")

        def change(admin_id: int) -> str:
            set_reader_active(self.db, reader.id, active, acting_reader_id=admin_id)
            return done

        return self._as_admin(doing, change)

    def reset_pin_of_selected(self) -> bool:
        reader = self.selected_reader()
        if reader is None:
            return False
        try:
            secret = ask_new_secret(self, f"Reset {_credential_of(reader)}", reader.name, reader.role,
                                    optional=reader.role not in REVIEW_ROLES)
        except OctantError as error:
            self.show_problem(str(error))
            return False
        if secret is None:
            return False
        changed = (f"{_credential_of(reader)} is removed" if secret == "" else
                   f"new {'PIN' if credentials.is_pin(secret) else 'passphrase'} is set")
        done = f"{reader.name}'s {changed}; their wrong tries are cleared."

        def change(admin_id: int) -> str:
            reset_pin(self.db, reader.id, secret or None, acting_reader_id=admin_id)
            return done

        return self._as_admin(f"Resetting {reader.name}'s {_credential_of(reader)}", change)

    def move_selected(self, split: str) -> bool:
        image_ids = self.selected_photos()
        if not image_ids:
            return False
        count = len(image_ids)
        photos = f"{count} photo{'s' if count != 1 else ''}"

        def change(admin_id: int) -> str:
            move_images_to_split(self.db, image_ids, split, acting_reader_id=admin_id)
            return f"Moved {photos} to the {SET_NAMES[split]} set."

        return self._as_admin(f"Moving {photos} to the {SET_NAMES[split]} set", change)


def open_project_admin(window) -> ProjectAdminDialog | None:
    """File → Readers and sets… of ``window`` (a workstation); refused in one sentence unless its
    reader is an active admin."""
    project, reader = window.controller.project, window.controller.reader
    try:
        require_admin(project.database, reader.id)
    except OctantError as error:
        window.show_problem(str(error))
        return None
    dialog = ProjectAdminDialog(project, reader.id, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.admin_dialog = dialog
    dialog.finished.connect(lambda _result: give_keys_back(window))
    dialog.open()
    return dialog
