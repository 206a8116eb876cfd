"""Sign in: choose (or create) a project, choose (or add) a reader, type the PIN if they have one.

PINs and passphrases are checked by ``storage.readers.sign_in`` (salted scrypt hash, wrong tries
counted and delayed); the dialog keeps none. "Add reader…" is an admin's action: an admin types
their passphrase for it first (``ui.admin_guard``), and a project without an admin (a new one) gets its first admin, with a
passphrase, instead. Recent project folders are remembered in the workstation's QSettings.
"""
from __future__ import annotations

from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from storage.credentials import MIN_PASSPHRASE_CHARS
from storage.database import Database
from storage.errors import OctantError
from storage.project import ProjectHandle, create_project, open_project
from storage.readers import Role, add_reader, create_first_admin, has_admin, list_readers, sign_in
from ui import message_line
from ui.admin_guard import Prompts, admin_signs_in, ask_new_reader
from ui.keyboard_focus import give_keys_back
from ui.workstation_settings import workstation_settings

RECENT_KEY = "recent/projects"
RECENT_COUNT = 8


def recent_projects() -> list[str]:
    value = workstation_settings().value(RECENT_KEY) or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def credential_word(role: Role) -> str:
    """What the sign-in field asks of a reader who has a credential: admins always have a passphrase
    (docs/roles.md), so "PIN" alone sent them looking for digits they never had."""
    return "passphrase" if role is Role.ADMIN else "PIN or passphrase"


def remember_project(folder: Path) -> None:
    folders = [str(folder)] + [f for f in recent_projects() if f != str(folder)]
    workstation_settings().setValue(RECENT_KEY, folders[:RECENT_COUNT])


NO_PROJECT_YET = ("Open a project folder (Open…), or make a new one (New…); to try Octant first, "
                  "`python main.py gui --demo` opens a demo project.")


class SignInDialog(QDialog, Prompts):
    def __init__(self, folder: Path | None = None, parent: QWidget | None = None,
                 reader: str | None = None, database_url: str | None = None) -> None:
        """``database_url`` (a shared PostgreSQL database, `gui --database-url`) belongs to
        ``folder``: that folder opens with it; any other folder chosen here with its own file."""
        super().__init__(parent)
        self._url_folder = Path(folder).expanduser().resolve() if folder is not None and database_url else None
        self._database_url = database_url
        # The command line's reader, chosen again whenever the list is filled: a project that opens
        # only on a second try (the server was down) listed the admin first, and the reader's PIN
        # went to the admin's account as a wrong try.
        self._wanted_reader = reader
        self.setWindowTitle("Octant — sign in")
        self.setWindowIcon(qta.icon("mdi6.eye-outline"))
        self.project: ProjectHandle | None = None
        self.reader_id: int | None = None
        self.folder = QComboBox()
        self.folder.setEditable(True)
        folder_text = self.folder.lineEdit()
        assert folder_text is not None   # an editable combo box has its line edit
        self.folder.setMinimumWidth(380)
        self.folder.addItems(recent_projects())
        folder_text.setPlaceholderText("Project folder")
        browse = QPushButton(qta.icon("mdi6.folder-open-outline"), "&Open…")   # Alt+O, Alt+N: keys only
        browse.clicked.connect(self._browse)
        new = QPushButton(qta.icon("mdi6.folder-plus-outline"), "&New…")
        new.clicked.connect(self._new_project)
        row = QHBoxLayout()
        for widget in (self.folder, browse, new):
            row.addWidget(widget)
        self.readers = QListWidget()
        self.readers.setMinimumHeight(160)
        self.readers.currentItemChanged.connect(self._reader_changed)
        self.readers.itemDoubleClicked.connect(lambda _item: self._sign_in())
        self.add = add = QPushButton(qta.icon("mdi6.account-plus-outline"), "Add reader…")
        add.clicked.connect(self._add_reader)
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("no PIN")
        # Enter in the PIN field is the dialog's default button (Sign in); a returnPressed slot as
        # well made every Enter two tries, so a second typo already meant waiting.
        self.message = QLabel("")
        self.message.setStyleSheet(f"color:{message_line.PROBLEM_COLOUR};")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.sign_in_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.sign_in_button.setText("Sign in")
        buttons.accepted.connect(self._sign_in)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Project", row)
        form.addRow("Reader", self.readers)
        form.addRow("", add)
        form.addRow("PIN or passphrase", self.pin)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.folder.activated.connect(lambda _index: self._load_project())
        folder_text.editingFinished.connect(self._load_project)
        if folder is not None:
            self.folder.setCurrentText(str(folder))
        self._load_project()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter in the project field (which passes it on to here) opens that project and moves on
        to the PIN or the readers; the dialog's default button made it Sign in for the first reader
        with no PIN typed: a wrong try."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.focusWidget() is self.folder.lineEdit():
            self._load_project()
            (self.pin if self.pin.isEnabled() else self.readers).setFocus()
            return
        super().keyPressEvent(event)

    def _problem(self, text: str) -> None:
        message_line.show_problem(self.message, text)

    def show_problem(self, text: str) -> None:
        """A problem found before the dialog opened (the command line's reader), in red."""
        self._problem(text)

    def show_note(self, text: str) -> None:
        """Not a problem: what just happened (e.g. a restore), in the message line."""
        message_line.show_done(self.message, text)

    def select_reader(self, name: str) -> None:
        """Preselect a reader by name (the command line's --reader), e.g. to type their PIN."""
        for row in range(self.readers.count()):
            if self.readers.item(row).text().split("  ·")[0] == name.strip():
                self.readers.setCurrentRow(row)
                return

    # --- project ------------------------------------------------------------------------------
    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Open an Octant project folder",
                                                  self.folder.currentText())
        give_keys_back(self)   # the dialog is the only window: nobody else gives them back
        if chosen:
            self.folder.setCurrentText(chosen)
            self._load_project()

    def _new_project(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder for the new project")
        give_keys_back(self)
        if not chosen:
            return
        try:
            create_project(chosen).close()
        except OctantError as error:
            self._problem(str(error))
            return
        self.folder.setCurrentText(chosen)
        self._load_project()

    def _load_project(self) -> None:
        text = self.folder.currentText().strip()
        if self.project is not None and text and Path(text).resolve() == self.project.root:
            return
        self._close_project()
        self.readers.clear()
        if not text:   # a first start: an empty form said nothing of where to begin
            self.message.setStyleSheet("")
            self.message.setText(NO_PROJECT_YET)
            return
        url = self._database_url if Path(text).expanduser().resolve() == self._url_folder else None
        try:
            self.project = open_project(Path(text), database_url=url)
        except OctantError as error:
            self._problem(str(error))
            return
        self._fill_readers()

    def _fill_readers(self) -> None:
        self.readers.clear()
        if self.project is None:
            return
        try:
            readers = list_readers(self.project.database)
        except OctantError as error:
            self._problem(str(error))
            return
        self.message.setText("" if readers else "This project has no readers yet: add one (the first is its admin, with a passphrase).")
        for reader in readers:
            item = QListWidgetItem(qta.icon("mdi6.lock-outline" if reader.has_pin
                                            else "mdi6.account-outline"),
                                   f"{reader.name}  ·  {reader.role.value.replace('_', ' ')}")
            item.setData(Qt.ItemDataRole.UserRole, (reader.id, reader.has_pin, credential_word(reader.role)))
            self.readers.addItem(item)
        if readers:
            self.readers.setCurrentRow(0)
            if self._wanted_reader:
                self.select_reader(self._wanted_reader)

    def _close_project(self) -> None:
        if self.project is not None:
            self.project.close()
            self.project = None

    # --- reader -------------------------------------------------------------------------------
    def _reader_changed(self, item: QListWidgetItem | None, previous=None) -> None:
        if previous is not None:   # "not right for Ana" stayed up, in red, once Ben was chosen
            self.message.clear()
        has_pin = bool(item and item.data(Qt.ItemDataRole.UserRole)[1])
        self.pin.setEnabled(has_pin)
        self.pin.setPlaceholderText(item.data(Qt.ItemDataRole.UserRole)[2] if item and has_pin else "no PIN")
        self.pin.clear()
        if has_pin:
            self.pin.setFocus()

    def _add_first_admin(self, db: Database) -> bool:
        name = self.ask_text("First admin", "This project has no admin yet. The admin adds readers and "
                                            "changes roles. Admin's name:")
        if not name or not name.strip():
            return False
        passphrase = self.ask_text("First admin", f"Passphrase for {name.strip()} "
                                                  f"(at least {MIN_PASSPHRASE_CHARS} characters):", secret=True)
        if passphrase is None:
            return False
        if self.ask_text("First admin", "The passphrase again:", secret=True) != passphrase:
            self._problem("The two passphrases differ; try again.")
            return False
        create_first_admin(db, name, passphrase)
        return True

    def _add_reader(self) -> None:
        if self.project is None:
            self._problem("Open a project first.")
            return
        try:
            db = self.project.database
            added = self._add_by_admin(db) if has_admin(db) else self._add_first_admin(db)
        except OctantError as error:
            self._problem(str(error))
            return
        if added:
            self._fill_readers()
            self.readers.setCurrentRow(self.readers.count() - 1)

    def _add_by_admin(self, db: Database) -> bool:
        admin_id = admin_signs_in(db, self, "Adding a reader")
        if admin_id is None:
            return False
        asked = ask_new_reader(self)
        if asked is None:
            return False
        name, role, secret = asked
        add_reader(db, name, role=role, pin=secret, acting_reader_id=admin_id)
        return True

    def _sign_in(self) -> None:
        item = self.readers.currentItem()
        if self.project is None or item is None:
            self._problem("Choose a project and a reader.")
            return
        reader_id, has_pin, word = item.data(Qt.ItemDataRole.UserRole)
        if has_pin and not self.pin.text():   # nothing typed is no try (it would count as a wrong one)
            self._problem(f"Type the {word} of {item.text().split('  ·')[0]}, then press Enter.")
            self.pin.setFocus()
            return
        try:
            sign_in(self.project.database, reader_id, self.pin.text() or None)
        except OctantError as error:   # wrong PIN (and how long to wait), retired, unknown
            self._problem(str(error))
            self.pin.selectAll()
            return
        remember_project(self.project.root)
        self.reader_id = reader_id
        self.accept()

    def signed_in(self) -> tuple[ProjectHandle, int] | None:
        """The open project and the reader who signed in to it; None before a sign-in."""
        if self.project is None or self.reader_id is None:
            return None
        return self.project, self.reader_id

    def reject(self) -> None:
        self._close_project()
        super().reject()
