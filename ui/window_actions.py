"""The workstation's toolbar, menus and actions: icons, tooltips with their keys, check states.

Every action comes from the one table of bindings in ``shortcuts`` and is added to the window
itself, so its key works whether or not it is shown in the toolbar or a menu.
"""
from __future__ import annotations

import qtawesome as qta
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar, QToolButton, QWidgetAction

from storage.readers import Role
from ui.shortcuts import Binding

ICONS = {
    "next_unfinished": "mdi6.skip-next-circle-outline", "previous": "mdi6.chevron-left",
    "next": "mdi6.chevron-right", "normal": "mdi6.check-decagram-outline",
    "undo": "mdi6.undo", "redo": "mdi6.redo", "fit": "mdi6.fit-to-screen-outline",
    "actual_size": "mdi6.numeric-1-box-outline", "zoom_in": "mdi6.magnify-plus-outline",
    "zoom_out": "mdi6.magnify-minus-outline", "regions": "mdi6.vector-polygon",
    "green": "mdi6.leaf", "clahe": "mdi6.contrast-box", "shortcuts": "mdi6.keyboard-outline",
    "accept_suggestions": "mdi6.auto-fix", "reset_aids": "mdi6.image-refresh-outline",
    "overlay_vessels": "mdi6.vector-curve", "overlay_disc_cup": "mdi6.circle-double",
    "overlay_lesions": "mdi6.blur",
}
TOOLBAR = ("previous", "next", "next_unfinished", None, "undo", "redo", None, "fit",
           "actual_size", "zoom_in", "zoom_out", None, "regions", "green", "clahe", "aids", None,
           "accept_suggestions", "overlay_vessels", "overlay_disc_cup", "overlay_lesions", None,
           "shortcuts")
# Menu entries whose binding text, cut at its first " (" or ":", would lose what tells them apart
# ("Model overlay" three times, "1" for 1:1).
MENU_TEXT = {
    "actual_size": "Actual size (1:1)",
    "overlay_vessels": "Vessels overlay", "overlay_disc_cup": "Disc and cup overlay",
    "overlay_lesions": "Lesions overlay",
}
CHECKABLE = {"regions", "green", "clahe", "ungradable", "overlay_vessels", "overlay_disc_cup",
             "overlay_lesions"}


def add_action(window, binding: Binding, slot) -> QAction:
    """A window-wide action (works also when hidden from toolbar and menus)."""
    action = QAction(MENU_TEXT.get(binding.name, binding.text.split(" (")[0].split(":")[0]), window)
    action.setShortcuts([QKeySequence(k) for k in binding.keys])
    action.setToolTip(f"{binding.text}  [{binding.keys[0]}]")
    action.setStatusTip(binding.text)
    if binding.name in ICONS:
        action.setIcon(qta.icon(ICONS[binding.name]))
    action.setCheckable(binding.name in CHECKABLE)
    action.triggered.connect(slot)
    window.addAction(action)
    window.actions_by_name[binding.name] = action
    return action


def build_toolbar_and_menus(window) -> None:
    """Toolbar (icons with tooltips naming their keys) and menus listing every action."""
    toolbar = QToolBar("Tools", window)
    toolbar.setObjectName("toolbar")
    toolbar.setMovable(False)
    window.addToolBar(toolbar)
    aids_button = QToolButton()
    aids_button.setIcon(qta.icon("mdi6.brightness-6"))
    aids_button.setToolTip("Brightness and contrast (display only)  [Shift+↑↓ / Shift+←→]")
    aids_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(aids_button)
    holder = QWidgetAction(menu)
    holder.setDefaultWidget(window.aids_panel)
    menu.addAction(holder)
    aids_button.setMenu(menu)
    for name in TOOLBAR:
        if name is None:
            toolbar.addSeparator()
        elif name == "aids":
            toolbar.addWidget(aids_button)
        else:
            toolbar.addAction(window.actions_by_name[name])
    a = window.actions_by_name
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction(qta.icon("mdi6.account-switch-outline"),
                        "Sign in as another reader / open a project…",
                        window.signOutRequested.emit)
    from ui.own_credential import change_my_pin

    file_menu.addAction(qta.icon("mdi6.form-textbox-password"), "Change my PIN…", lambda: change_my_pin(window))
    if window.controller.session.can_review:
        # Training reads every reader's labels (consensus): reviewers and admins only.
        file_menu.addAction(qta.icon("mdi6.school-outline"), "Train models…",
                            window.open_training)
        # Every reader's labels side by side, agreement and queues (ui/review).
        file_menu.addAction(qta.icon("mdi6.compare"), "Review…", window.open_review)
        # A backup holds every reader's labels: reviewers and admins, like training.
        from ui.backup_actions import back_up_now

        file_menu.addAction(qta.icon("mdi6.content-save-all-outline"), "Back up now…",
                            lambda: back_up_now(window))
    if window.controller.reader.role is Role.ADMIN:
        # Managing readers and the sets, restoring a backup: admins only, each change with their passphrase (docs/roles.md).
        from ui.project_admin import open_project_admin

        file_menu.addSeparator()
        file_menu.addAction(qta.icon("mdi6.account-cog-outline"), "Readers and sets…",
                            lambda: open_project_admin(window))
        from ui.backup_actions import restore_from_backup

        file_menu.addAction(qta.icon("mdi6.backup-restore"), "Restore from backup…",
                            lambda: restore_from_backup(window))
    file_menu.addSeparator()
    quit_action = file_menu.addAction(qta.icon("mdi6.exit-to-app"), "Quit", window.close)
    quit_action.setShortcut(QKeySequence.StandardKey.Quit)
    menus = {
        "&Reading": ("next_unfinished", "previous", "next", "normal", "ungradable", None,
                     "undo", "redo", "clear_finding", "accept_suggestions"),
        "&View": ("fit", "actual_size", "zoom_in", "zoom_out", "regions", None, "green",
                  "clahe", "brighter", "darker", "more_contrast", "less_contrast",
                  "reset_aids"),
        "&Model": ("accept_suggestions", "overlay_vessels", "overlay_disc_cup",
                   "overlay_lesions"),
        "&Help": ("shortcuts",),
    }
    for title, names in menus.items():
        menu = window.menuBar().addMenu(title)
        for name in names:
            menu.addSeparator() if name is None else menu.addAction(a[name])
        if title == "&Help":
            from ui.about import show_about

            menu.addSeparator()
            menu.addAction(qta.icon("mdi6.information-outline"), "About Octant…", lambda: show_about(window))
        if title == "&Model":
            menu.addSeparator()
            menu.addAction(window.ahead_action)
            from ui.precision_setting import add_precision_menu

            add_precision_menu(menu, window)
