"""Driving File → Readers and sets…'s actions as a given person, for tests/ui/test_admin_screens.py
and the role table's cells (tests/ui/test_roles_screens.py): a reader (Ana, with a PIN), a
reviewer (Rhea) and the admin of the ``clinic`` fixture (tests/ui/conftest.py); the prompts are
answered by a script."""
from __future__ import annotations

from storage.images import get_image
from storage.readers import get_reader, list_readers, set_reader_active
from tests.conftest import ADMIN_PASSPHRASE
from ui.project_admin import ProjectAdminDialog

ANA_PIN, RHEA_PIN = "135791", "246810"
CREDENTIALS = {"Admin": ADMIN_PASSPHRASE, "Ana": ANA_PIN, "Rhea": RHEA_PIN}


def answer(monkeypatch, widget, texts=(), choices=()):
    """Script the prompts: ``texts`` answer ask_text in turn, ``choices`` ask_choice; the labels
    asked are kept in ``widget.asked``."""
    texts, choices = iter(texts), iter(choices)
    widget.asked = []

    def ask_text(title, label, secret=False):
        widget.asked.append(label)
        return next(texts)

    def ask_choice(title, label, items, current=0):
        widget.asked.append(label)
        choice = next(choices)
        assert choice in items
        return choice

    monkeypatch.setattr(widget, "ask_text", ask_text)
    monkeypatch.setattr(widget, "ask_choice", ask_choice)


def dialog_for(qtbot, clinic, who: str) -> ProjectAdminDialog:
    dialog = ProjectAdminDialog(clinic.project, clinic.readers[who].id)
    qtbot.addWidget(dialog)
    return dialog


# One entry per action: what is set up first, how the dialog is driven with the actor's
# passphrase, what is stored when it was done, and the audit event (entity, action) it writes.
def retire_ben(clinic):
    set_reader_active(clinic.project.database, clinic.readers["Ben"].id, False,
                      acting_reader_id=clinic.readers["Admin"].id)


def act_add(dialog, monkeypatch, secret):
    answer(monkeypatch, dialog, texts=["Dr New", "24681357", "24681357", secret], choices=["ophthalmologist"])
    return dialog.add_reader()


def act_role(dialog, monkeypatch, secret):
    dialog.select_reader("Ben")
    answer(monkeypatch, dialog, texts=[secret], choices=["glaucoma specialist"])
    return dialog.change_role_of_selected()


def act_retire(dialog, monkeypatch, secret):
    dialog.select_reader("Ben")
    answer(monkeypatch, dialog, texts=[secret])
    assert dialog.retire.isEnabled() and not dialog.reinstate.isEnabled()
    return dialog.set_selected_active(False)


def act_reinstate(dialog, monkeypatch, secret):
    dialog.select_reader("Ben")
    answer(monkeypatch, dialog, texts=[secret])
    assert dialog.reinstate.isEnabled() and not dialog.retire.isEnabled()
    return dialog.set_selected_active(True)


def act_reset_pin(dialog, monkeypatch, secret):
    dialog.select_reader("Ben")
    answer(monkeypatch, dialog, texts=["24681357", "24681357", secret])
    return dialog.reset_pin_of_selected()


def act_split(dialog, monkeypatch, secret):
    dialog.tabs.setCurrentIndex(1)
    dialog.select_photos([dialog.photo_rows[0].id, dialog.photo_rows[1].id])
    assert dialog.to_test.isEnabled()
    answer(monkeypatch, dialog, texts=[secret])
    return dialog.move_selected("test")


def stored(clinic, action):
    db, ben = clinic.project.database, clinic.readers["Ben"].id
    return {"add": lambda: "Dr New" in [r.name for r in list_readers(db, include_inactive=True)],
            "role": lambda: get_reader(db, ben).role.value,
            "retire": lambda: get_reader(db, ben).active,
            "reinstate": lambda: get_reader(db, ben).active,
            "reset_pin": lambda: get_reader(db, ben).has_pin,
            "split": lambda: [get_image(db, i).split for i in clinic.image_ids[:2]]}[action]()


ACTIONS = {
    "add": (None, act_add, True, ("reader", "create")),
    "role": (None, act_role, "glaucoma_specialist", ("reader", "set_role")),
    "retire": (None, act_retire, False, ("reader", "set_active")),
    "reinstate": (retire_ben, act_reinstate, True, ("reader", "set_active")),
    "reset_pin": (None, act_reset_pin, True, ("reader", "reset_pin")),
    "split": (None, act_split, ["test", "test"], ("image", "set_split")),
}


def prepared(qtbot, clinic, action, who):
    prepare, act, expected, (entity, event) = ACTIONS[action]
    if prepare is not None:
        prepare(clinic)
    return dialog_for(qtbot, clinic, who), act, expected, entity, event


