"""The screens' rows of docs/roles.md's table (ids ``gui-…``), each cell observed on a real
window or dialog: a reader (Ana, with a PIN), a reviewer (Rhea) and the admin sign in with their
own credentials; the menus, the sign-in dialog's "Add reader…" and File → Readers and sets…
(tests/ui/admin_actions.py) show and do what their role allows."""
from __future__ import annotations

import pytest

from storage.readers import list_readers
from storage.reading import ReaderSession
from tests.roles_table import cells, role_table
from tests.ui.admin_actions import CREDENTIALS, answer, prepared, stored
from ui.sign_in import SignInDialog

ACTING = {"Reader": "Ana", "Reviewer": "Rhea", "Admin": "Admin"}


def window_for(qtbot, clinic, who):
    from ui.workstation import build_window

    window = build_window(clinic.project, clinic.readers[who].id)
    qtbot.addWidget(window)
    return window


def file_menu_texts(window) -> list[str]:
    return [a.text() for a in window.menuBar().actions()[0].menu().actions()]


def file_menu_has(qtbot, clinic, who, text: str) -> bool:
    return text in file_menu_texts(window_for(qtbot, clinic, who))


def check_sign_in(qtbot, clinic, who, monkeypatch):
    dialog = SignInDialog(clinic.folder, reader=who)
    qtbot.addWidget(dialog)
    dialog.pin.setText("not " + CREDENTIALS[who])
    dialog.sign_in_button.click()
    assert dialog.reader_id is None   # only their own credential opens it
    dialog.pin.setText(CREDENTIALS[who])
    dialog.sign_in_button.click()
    signed_in = dialog.reader_id == clinic.readers[who].id
    dialog.project.close()
    return "yes" if signed_in else "no"


def check_reading(qtbot, clinic, who, monkeypatch):
    window = window_for(qtbot, clinic, who)
    mine = [image.id for image in ReaderSession(clinic.project.database, clinic.readers[who].id).queue()]
    shown = [image.id for image in window.controller.session.queue()]
    assert window.controller.session.reader.name == who
    return "own" if shown == mine else "all"


def check_review(qtbot, clinic, who, monkeypatch):
    return "all" if file_menu_has(qtbot, clinic, who, "Review…") else "no"


def check_train(qtbot, clinic, who, monkeypatch):
    return "yes" if file_menu_has(qtbot, clinic, who, "Train models…") else "no"


def check_backup(qtbot, clinic, who, monkeypatch):
    return "yes" if file_menu_has(qtbot, clinic, who, "Back up now…") else "no"


def check_restore(qtbot, clinic, who, monkeypatch):
    # The restore itself, and the refusal of one who reaches it anyway: tests/ui/test_restore_action.py.
    return "yes" if file_menu_has(qtbot, clinic, who, "Restore from backup…") else "no"


def check_add_reader(qtbot, clinic, who, monkeypatch):
    dialog = SignInDialog(clinic.folder)
    qtbot.addWidget(dialog)
    answers = iter([CREDENTIALS[who], "Dr New", "ophthalmologist", ""])

    def choose(title, label, items):
        return who if who in items else None   # only admins are offered

    monkeypatch.setattr(dialog, "ask_choice", lambda title, label, items: (
        choose(title, label, items) if title == "Admin sign-in" else next(answers)))
    monkeypatch.setattr(dialog, "ask_text", lambda *args, **kwargs: next(answers))
    dialog.add.click()
    added = "Dr New" in [r.name for r in list_readers(clinic.project.database)]
    dialog.project.close()
    return "yes" if added else "no"


def admin_action_check(action: str):
    """File → Readers and sets… is offered to exactly those whose action is then done; one who
    reached the dialog anyway (built for them) is refused by the storage function."""
    def check(qtbot, clinic, who, monkeypatch):
        offered = file_menu_has(qtbot, clinic, who, "Readers and sets…")
        dialog, act, expected, _entity, _event = prepared(qtbot, clinic, action, who)
        done = act(dialog, monkeypatch, CREDENTIALS[who]) and stored(clinic, action) == expected
        assert offered == done, dialog.message.text()
        return "yes" if done else "no"
    return check


def check_own_pin(qtbot, clinic, who, monkeypatch):
    from storage.readers import sign_in
    from ui.own_credential import change_my_pin

    window = window_for(qtbot, clinic, who)
    new = "a new passphrase 2026" if who == "Admin" else "97531864"
    answer(monkeypatch, window, texts=[CREDENTIALS[who], new, new])
    changed = "Change my PIN…" in file_menu_texts(window) and change_my_pin(window)
    # It acts on the signed-in reader only: whose credential changed is whose window it is.
    return "own" if changed and sign_in(clinic.project.database, clinic.readers[who].id, new) else "no"


CHECKS = {"gui-sign-in": check_sign_in, "gui-reading": check_reading, "gui-review": check_review,
          "gui-train": check_train, "gui-backup": check_backup, "gui-add-reader": check_add_reader,
          "gui-readers-add": admin_action_check("add"), "gui-readers-role": admin_action_check("role"), "gui-readers-retire": admin_action_check("retire"),
          "gui-readers-reinstate": admin_action_check("reinstate"),
          "gui-readers-reset-pin": admin_action_check("reset_pin"), "gui-split": admin_action_check("split"),
          "gui-own-pin": check_own_pin, "gui-restore": check_restore}


def test_every_screen_row_has_its_check():
    assert {row for row in role_table() if row.startswith("gui-")} == set(CHECKS)


@pytest.mark.parametrize("row, role, documented", cells(lambda row: row.startswith("gui-")))
def test_each_screen_cell(qtbot, clinic, monkeypatch, row, role, documented):
    assert CHECKS[row](qtbot, clinic, ACTING[role], monkeypatch) == documented
