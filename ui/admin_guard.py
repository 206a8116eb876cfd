"""The prompts of the GUI's guarded actions, and the admin's passphrase before each admin action.

Every admin action in the GUI (adding a reader in the sign-in dialog; changing a role, retiring,
reinstating, resetting a PIN and moving photos between the sets in File → Readers and sets…;
restoring a backup) first has the admin type their passphrase, checked by
``storage.readers.sign_in`` like any sign-in (wrong tries counted, delayed and audited), so a
workstation left signed in does not let a passer-by act as the admin. The storage function the
action then calls checks again, in its own transaction, that the actor is an active admin.

Prompts go through ``Prompts``' methods so tests can answer them.
"""
from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox, QWidget

from storage.credentials import MIN_PASSPHRASE_CHARS, MIN_PIN_DIGITS
from storage.database import Database
from storage.errors import InvalidRequestError
from storage.readers import ReaderInfo, Role, list_readers, require_admin, sign_in
from ui.keyboard_focus import give_keys_back


class Prompts:
    """Mixed into a QWidget: the small modal questions a guarded action asks."""

    def _prompt_parent(self) -> QWidget:
        assert isinstance(self, QWidget), "Prompts is mixed into a QWidget"
        return self

    def ask_text(self, title: str, label: str, secret: bool = False) -> str | None:
        mode = QLineEdit.EchoMode.Password if secret else QLineEdit.EchoMode.Normal
        text, ok = QInputDialog.getText(self._prompt_parent(), title, label, mode)
        give_keys_back(self._prompt_parent())
        return text if ok else None

    def ask_choice(self, title: str, label: str, items: list[str], current: int = 0) -> str | None:
        item, ok = QInputDialog.getItem(self._prompt_parent(), title, label, items, current, False)
        give_keys_back(self._prompt_parent())
        return item if ok else None

    def ask_yes(self, title: str, sentence: str) -> bool:
        answer = QMessageBox.question(self._prompt_parent(), title, sentence)
        give_keys_back(self._prompt_parent())
        return answer == QMessageBox.StandardButton.Yes


def admin_signs_in(db: Database, prompts: Prompts, doing: str, admin: ReaderInfo | None = None) -> int | None:
    """The id of the admin who has just typed their passphrase for ``doing`` (a sentence saying
    what they are about to do); None when they cancel. ``admin``: the admin who is signed in at
    the workstation; without one, they choose among the project's admins first. A wrong
    passphrase, or someone who is not an active admin, raises AccessDeniedError (one sentence)."""
    if admin is None:
        admins = [r for r in list_readers(db) if r.role is Role.ADMIN]
        if not admins:
            return None
        name = prompts.ask_choice("Admin sign-in", f"{doing} is an admin's action. Admin:", [a.name for a in admins])
        if name is None:
            return None
        admin = next(a for a in admins if a.name == name)
    passphrase = prompts.ask_text("Admin sign-in", f"{doing}: passphrase for {admin.name}:", secret=True)
    if passphrase is None:
        return None
    return require_admin(db, sign_in(db, admin.id, passphrase).id).id


def ask_new_secret(prompts: Prompts, title: str, name: str, role: Role, optional: bool = False) -> str | None:
    """A new PIN or passphrase for ``name``, typed twice; "" when left empty (no PIN: the label
    offers it when ``optional``), None when cancelled. The two differ: InvalidRequestError."""
    if role is Role.ADMIN:
        what = f"New passphrase for {name} (at least {MIN_PASSPHRASE_CHARS} characters, not only digits):"
    else:
        what = (f"New PIN for {name} ({MIN_PIN_DIGITS} digits or more) or passphrase "
                f"({MIN_PASSPHRASE_CHARS}+ characters){' (leave empty for none)' if optional else ''}:")
    first = prompts.ask_text(title, what, secret=True)
    if not first:   # cancelled, or none (the storage function says when the role needs one)
        return first
    again = prompts.ask_text(title, "The same again:", secret=True)
    if again is None:
        return None
    if again != first:
        raise InvalidRequestError("The two entries differ; nothing was changed.")
    return first


def ask_new_reader(prompts: Prompts) -> tuple[str, Role, str | None] | None:
    """Name, role and credential of a reader to add (sign-in dialog's and File → Readers and
    sets…' Add reader…); None when cancelled. The credential is typed twice."""
    name = prompts.ask_text("Add reader", "Name (as it should appear):")
    if not name or not name.strip():
        return None
    chosen = prompts.ask_choice("Add reader", f"Role of {name.strip()}:", [role.value.replace("_", " ") for role in Role])
    if chosen is None:
        return None
    role = Role.parse(chosen)
    secret = ask_new_secret(prompts, "Add reader", name.strip(), role, optional=role not in (Role.REVIEWER, Role.ADMIN))
    if secret is None:
        return None
    return name.strip(), role, secret or None
