"""File → Change my PIN…: the signed-in reader changes their own PIN or passphrase, typing the
old one first (``storage.readers.change_own_pin``, as ``readers pin NAME``: a wrong old one
counts as a wrong sign-in try, and the change is audited)."""
from __future__ import annotations

from storage.errors import OctantError
from storage.readers import REVIEW_ROLES, change_own_pin, get_reader
from ui.admin_guard import ask_new_secret

TITLE = "Change my PIN"


def change_my_pin(window) -> bool:
    """Ask the current credential (when there is one) and the new one twice; the outcome is one
    sentence in the status bar. True when it was changed."""
    db, reader_id = window.controller.project.database, window.controller.reader.id
    try:
        reader = get_reader(db, reader_id)
        old = None
        if reader.has_pin:
            old = window.ask_text(TITLE, f"Current PIN or passphrase for {reader.name}:", secret=True)
            if old is None:
                return False
        new = ask_new_secret(window, TITLE, reader.name, reader.role, optional=reader.role not in REVIEW_ROLES)
        if new is None or (new == "" and not reader.has_pin):
            return False
        change_own_pin(db, reader_id, old, new or None)
    except OctantError as error:
        window.show_problem(str(error))
        return False
    window.show_hint(f"Your {'PIN is removed' if new == '' else 'new PIN is set'} ✓; sign in with it from now on.")
    return True
