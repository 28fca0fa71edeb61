"""Help > User guide and Help > About: the guide is docs/USER_GUIDE.md rendered as Markdown, so the
text the analyst reads in the app and on the repository page is one file."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

import engine

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "USER_GUIDE.md"


def guide_markdown() -> str:
    try:
        return GUIDE.read_text(encoding="utf-8")
    except OSError as exc:
        return f"# User guide\n\nThe guide could not be read from `{GUIDE}` ({exc.strerror or exc})."


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def compute_device() -> str:
    """The device training would use. torch is imported here, on demand, never at module level:
    by the time the analyst opens About the start-up warm-up has usually imported it already."""
    try:
        import torch
    except ImportError:
        return "none (torch is not installed: deep detectors unavailable)"
    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return "CPU (no CUDA device found)"


def about_text() -> str:
    rows = [("Anomaly Desk", engine.__version__), ("Python", platform.python_version()),
            ("Qt", qVersion()), ("PySide6", pyside_version), ("torch", _installed("torch")),
            ("pyqtgraph", _installed("pyqtgraph")), ("scikit-learn", _installed("scikit-learn")),
            ("pandas", _installed("pandas")), ("Training device", compute_device()),
            ("Platform", f"{platform.system()} {platform.machine()}")]
    body = "".join(f"<tr><td><b>{name}</b></td><td>{value}</td></tr>" for name, value in rows)
    return f"<h3>Anomaly Desk</h3><table cellspacing='4'>{body}</table>"


class _TextDialog(QDialog):
    def __init__(self, parent: QWidget | None, title: str, name: str):
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)


def window_shortcuts(window: QWidget) -> list[tuple[str, str]]:
    """(keys, what) for every action of ``window`` that has a shortcut, read from the actions themselves
    so the sheet cannot drift from the menus. The menu path is the action's menu title and text."""
    rows = []
    for act in window.findChildren(QAction):
        if act.shortcut().isEmpty():
            continue
        keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        menus = [w for w in act.associatedObjects() if hasattr(w, "title") and w.title()]
        where = f"{menus[0].title().replace('&', '')} > " if menus else ""
        rows.append((keys, where + act.text().replace("&", "").rstrip("…")))
    return sorted(rows, key=lambda r: r[1])


def shortcut_sheet(window: QWidget, review_keys: str) -> str:
    """The F1 sheet: the window's shortcuts (from its actions) then the review keys (``review_keys``,
    the review panel's cheat sheet, which lists keys the queue handles itself, not actions)."""
    body = "".join(f"<tr><td><b>{keys}</b></td><td>{what}</td></tr>" for keys, what in window_shortcuts(window))
    return (f"<h3>Window</h3><table cellspacing='2' cellpadding='3'>{body}</table>"
            f"<h3>Review queue (when it has the focus)</h3><p>{review_keys}</p>")


def show_shortcuts(window: QWidget, review_keys: str) -> QDialog:
    return _show(window, "Keyboard shortcuts", "shortcutsDialog", (520, 560),
                 lambda b: b.setHtml(shortcut_sheet(window, review_keys)))


def _show(parent: QWidget | None, title: str, name: str, size: tuple[int, int], fill) -> QDialog:
    dialog = _TextDialog(parent, title, name)
    fill(dialog.browser)
    dialog.resize(*size)
    dialog.open()
    return dialog


def show_user_guide(parent: QWidget | None) -> QDialog:
    return _show(parent, "User guide", "userGuideDialog", (760, 640), lambda b: b.setMarkdown(guide_markdown()))


def show_about(parent: QWidget | None) -> QDialog:
    return _show(parent, "About Anomaly Desk", "aboutDialog", (460, 360), lambda b: b.setHtml(about_text()))


__all__ = ["about_text", "compute_device", "guide_markdown", "shortcut_sheet", "show_about", "show_shortcuts",
           "show_user_guide", "window_shortcuts"]
