"""Help menu: the user guide, About, and the shortcut sheet built from the window's own actions."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from ui.help import window_shortcuts


def _menu_action(window, menu_title: str, text: str) -> QAction:
    for menu_action in window.menuBar().actions():
        if menu_action.text().replace("&", "") == menu_title:
            for act in menu_action.menu().actions():
                if act.text().replace("&", "").startswith(text):
                    return act
    raise AssertionError(f"no {menu_title} > {text}")


def test_help_user_guide_shows_the_guide(qtbot, window):
    _menu_action(window, "Help", "User guide").trigger()
    dialog = window.help_dialog
    assert dialog.objectName() == "userGuideDialog" and dialog.isVisible()
    assert "Keyboard shortcuts" in dialog.browser.toPlainText() or "Ctrl+O" in dialog.browser.toPlainText()
    dialog.close()


def test_help_about_shows_versions(qtbot, window):
    _menu_action(window, "Help", "About").trigger()
    text = window.help_dialog.browser.toPlainText()
    assert "Anomaly Desk" in text and "Qt" in text and "torch" in text
    window.help_dialog.close()


def test_shortcut_sheet_lists_every_action_with_a_shortcut(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_F1)
    dialog = window.help_dialog
    assert dialog.objectName() == "shortcutsDialog"
    text = dialog.browser.toPlainText()
    actions = [a for a in window.findChildren(QAction) if not a.shortcut().isEmpty()]
    assert len(actions) >= 12
    for act in actions:
        keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert keys in text, f"{keys} ({act.text()}) is not on the shortcut sheet"
    for keys in ("Ctrl+1", "Ctrl+5", "Ctrl+R", "Ctrl+E", "Ctrl+O", "Ctrl+Shift+O", "Ctrl+S", "Ctrl+Shift+S",
                 "Ctrl+Z", "F1"):
        assert keys in text
    for review_key in ("anomaly", "normal", "unsure", "J/K"):
        assert review_key in text
    dialog.close()


def test_a_new_action_appears_on_the_sheet_without_editing_it(qtbot, window):
    act = QAction("Frobnicate", window)
    act.setShortcut(QKeySequence("Ctrl+Alt+F"))
    window.addAction(act)
    assert ("Ctrl+Alt+F", "Frobnicate") in window_shortcuts(window)
