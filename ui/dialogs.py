"""Error dialogs: engine errors are shown as they are written (they name file, row and column);
anything unexpected gets a short message and the traceback under "Show Details". Dialogs are
window-modal but non-blocking (``open()``), so the event loop, the workers and the tests keep running."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from engine.errors import AnomalyDeskError


def error_text(exc: BaseException) -> str:
    if isinstance(exc, AnomalyDeskError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Not enough memory for this operation. Try a smaller training sample."
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def show_error(parent: QWidget | None, title: str, exc: BaseException, details: str | None = None) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QMessageBox.Icon.Warning if isinstance(exc, AnomalyDeskError) else QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(error_text(exc))
    if details and not isinstance(exc, AnomalyDeskError):
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box


def show_info(parent: QWidget | None, title: str, text: str) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("infoDialog")
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setText(text)
    box.open()
    return box
