"""File → Readers and sets… and File → Change my PIN…: each admin action is done for an admin who
types their passphrase, refused for a wrong passphrase and for someone who is not an admin, and
audited like the command line's; a retired reader cannot sign in afterwards."""
from __future__ import annotations

import pytest

from storage.audit import audit_events
from storage.readers import Role, get_reader
from tests.conftest import ADMIN_PASSPHRASE
from tests.ui.admin_actions import ACTIONS, ANA_PIN, CREDENTIALS, answer, dialog_for, prepared, stored
from ui.sign_in import SignInDialog
from ui.workstation import build_window


def events_by(clinic, entity, action, reader_id):
    return [e for e in audit_events(clinic.project.database, entity)
            if e.action == action and e.reader_id == reader_id]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_admin_with_their_passphrase_does_it_and_it_is_audited(qtbot, clinic, monkeypatch, action):
    dialog, act, expected, entity, event = prepared(qtbot, clinic, action, "Admin")
    admin = clinic.readers["Admin"].id
    before = len(events_by(clinic, entity, event, admin))
    assert act(dialog, monkeypatch, ADMIN_PASSPHRASE)
    assert stored(clinic, action) == expected
    assert "passphrase for Admin" in dialog.asked[-1]           # asked last: it confirms what is done
    assert "#c0392b" not in dialog.message.styleSheet(), dialog.message.text()
    assert len(events_by(clinic, entity, event, admin)) > before  # the admin is the audit's actor


@pytest.mark.parametrize("action", ACTIONS)
def test_a_wrong_passphrase_changes_nothing(qtbot, clinic, monkeypatch, action):
    dialog, act, _expected, entity, event = prepared(qtbot, clinic, action, "Admin")
    admin = clinic.readers["Admin"].id
    before, events = stored(clinic, action), len(events_by(clinic, entity, event, admin))
    assert not act(dialog, monkeypatch, "not the passphrase at all")
    assert stored(clinic, action) == before
    assert "not right for Admin" in dialog.message.text()
    assert len(events_by(clinic, entity, event, admin)) == events
    assert events_by(clinic, "reader", "sign_in_failed", admin)   # counted like any wrong sign-in


@pytest.mark.parametrize("who", ["Ana", "Rhea"])
@pytest.mark.parametrize("action", ACTIONS)
def test_someone_not_an_admin_is_refused_in_one_sentence(qtbot, clinic, monkeypatch, action, who):
    dialog, act, _expected, entity, event = prepared(qtbot, clinic, action, who)   # as if they had reached it
    before = stored(clinic, action)
    assert not act(dialog, monkeypatch, CREDENTIALS[who])   # their own, right credential
    assert stored(clinic, action) == before
    assert dialog.message.text().startswith("Only an admin can do that")
    assert not events_by(clinic, entity, event, clinic.readers[who].id)


def file_menu_texts(window) -> list[str]:
    return [a.text() for a in window.menuBar().actions()[0].menu().actions()]


@pytest.mark.parametrize("who", ["Ana", "Rhea"])
def test_the_menu_item_is_only_an_admins(qtbot, clinic, who):
    admin_window = build_window(clinic.project, clinic.readers["Admin"].id)
    other = build_window(clinic.project, clinic.readers[who].id)
    qtbot.addWidget(admin_window)
    qtbot.addWidget(other)
    assert "Readers and sets…" in file_menu_texts(admin_window)
    assert "Readers and sets…" not in file_menu_texts(other)
    from ui.project_admin import open_project_admin

    assert open_project_admin(other) is None   # reached anyway (a script): refused in one sentence
    assert other.hint_label.text().startswith("Only an admin can do that")


def test_the_menu_item_opens_the_dialog(qtbot, clinic):
    window = build_window(clinic.project, clinic.readers["Admin"].id)
    qtbot.addWidget(window)
    menu = window.menuBar().actions()[0].menu()
    next(a for a in menu.actions() if a.text() == "Readers and sets…").trigger()
    dialog = window.admin_dialog
    assert dialog.isVisible()
    names = [dialog.readers.item(row, 0).text() for row in range(dialog.readers.rowCount())]
    assert set(names) == {"Admin", "Ana", "Ben", "Cleo", "Rhea"}
    assert dialog.photos.rowCount() == len(clinic.image_ids)
    dialog.close()


def test_a_retired_reader_cannot_sign_in_afterwards(qtbot, clinic, monkeypatch):
    dialog = dialog_for(qtbot, clinic, "Admin")
    dialog.select_reader("Ana")
    answer(monkeypatch, dialog, texts=[ADMIN_PASSPHRASE])
    assert dialog.set_selected_active(False)
    row = next(r for r in range(dialog.readers.rowCount()) if dialog.readers.item(r, 0).text() == "Ana")
    assert dialog.readers.item(row, 3).text() == "retired"
    assert dialog.reinstate.isEnabled() and not dialog.retire.isEnabled()
    sign_in_dialog = SignInDialog(clinic.folder)
    qtbot.addWidget(sign_in_dialog)
    assert "Ana" not in [sign_in_dialog.readers.item(r).text().split("  ·")[0]
                         for r in range(sign_in_dialog.readers.count())]   # not offered
    from storage.errors import AccessDeniedError
    from storage.readers import sign_in

    with pytest.raises(AccessDeniedError, match="retired"):
        sign_in(sign_in_dialog.project.database, clinic.readers["Ana"].id, ANA_PIN)
    sign_in_dialog.project.close()


def test_the_last_admin_cannot_retire_themselves(qtbot, clinic, monkeypatch):
    dialog = dialog_for(qtbot, clinic, "Admin")
    dialog.select_reader("Admin")
    answer(monkeypatch, dialog, texts=[ADMIN_PASSPHRASE])
    assert not dialog.set_selected_active(False)
    assert dialog.message.text() == "Admin is the only admin; make another admin first."
    assert get_reader(clinic.project.database, clinic.readers["Admin"].id).active


def test_making_an_admin_needs_a_new_passphrase_typed_twice(qtbot, clinic, monkeypatch):
    dialog = dialog_for(qtbot, clinic, "Admin")
    dialog.select_reader("Ben")
    answer(monkeypatch, dialog, texts=["a new passphrase for ben", "a different one entirely"], choices=["admin"])
    assert not dialog.change_role_of_selected()
    assert dialog.message.text() == "The two entries differ; nothing was changed."
    answer(monkeypatch, dialog, texts=["a new passphrase for ben"] * 2 + [ADMIN_PASSPHRASE], choices=["admin"])
    assert dialog.change_role_of_selected()
    assert get_reader(clinic.project.database, clinic.readers["Ben"].id).role is Role.ADMIN


def test_a_too_short_new_pin_is_refused_before_the_passphrase(qtbot, clinic, monkeypatch):
    dialog = dialog_for(qtbot, clinic, "Admin")
    dialog.select_reader("Ben")
    answer(monkeypatch, dialog, texts=["1234", "1234", ADMIN_PASSPHRASE])
    assert not dialog.reset_pin_of_selected()
    assert dialog.message.text().startswith("A PIN needs at least 6 digits")
    assert not get_reader(clinic.project.database, clinic.readers["Ben"].id).has_pin


def test_the_readers_table_and_the_reset_button_name_each_credential_by_its_kind(qtbot, clinic, monkeypatch):
    # The table said "PIN or passphrase" for everyone, the admin's passphrase included.
    dialog = dialog_for(qtbot, clinic, "Admin")

    def credential_cells() -> dict[str, str]:
        table = dialog.readers
        return {table.item(row, 0).text(): table.item(row, 2).text() for row in range(table.rowCount())}

    assert credential_cells() == {"Admin": "passphrase", "Ana": "PIN", "Ben": "none", "Cleo": "none", "Rhea": "PIN"}
    dialog.select_reader("Admin")
    assert dialog.reset.text() == "Reset passphrase…"
    dialog.select_reader("Ana")
    assert dialog.reset.text() == "Reset PIN…"
    answer(monkeypatch, dialog, texts=["a phrase for Ana", "a phrase for Ana", ADMIN_PASSPHRASE])
    assert dialog.reset_pin_of_selected()
    assert dialog.message.text() == "Ana's new passphrase is set; their wrong tries are cleared."
    assert "Resetting Ana's PIN" in dialog.asked[-1]
    assert credential_cells()["Ana"] == "passphrase" and dialog.reset.text() == "Reset passphrase…"


# --- File → Change my PIN… ---------------------------------------------------------------------
def change_my_pin(qtbot, clinic, monkeypatch, who, texts):
    from ui.own_credential import change_my_pin as change

    window = build_window(clinic.project, clinic.readers[who].id)
    qtbot.addWidget(window)
    assert "Change my PIN…" in file_menu_texts(window)   # everyone's
    answer(monkeypatch, window, texts=texts)
    return window, change(window)


def test_a_reader_changes_their_own_pin_with_the_old_one(qtbot, clinic, monkeypatch):
    window, changed = change_my_pin(qtbot, clinic, monkeypatch, "Ana", [ANA_PIN, "97531864", "97531864"])
    assert changed and "new PIN is set" in window.hint_label.text()
    from storage.readers import sign_in

    assert sign_in(clinic.project.database, clinic.readers["Ana"].id, "97531864").name == "Ana"
    assert [e.reader_id for e in audit_events(clinic.project.database, "reader") if e.action == "set_pin"] \
        == [clinic.readers["Ana"].id]


def test_a_wrong_old_pin_changes_nothing(qtbot, clinic, monkeypatch):
    window, changed = change_my_pin(qtbot, clinic, monkeypatch, "Ana", ["000000", "97531864", "97531864"])
    assert not changed
    assert "not right for Ana" in window.hint_label.text()
    from storage.readers import sign_in

    assert sign_in(clinic.project.database, clinic.readers["Ana"].id, ANA_PIN).name == "Ana"
    assert not [e for e in audit_events(clinic.project.database, "reader") if e.action == "set_pin"]
