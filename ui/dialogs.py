"""Error dialogs: engine errors are shown as they are written (they name file, row and column);
anything unexpected gets a short message and the traceback under "Show Details". Dialogs are
window-modal but non-blocking (``open()``), so the event loop, the workers and the tests keep running."""

from __future__ import annotations

from pathlib import Path

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


def bad_rows_box(parent: QWidget, path: str, error) -> tuple[QMessageBox, object]:
    """The rows of the wrong length (``error.bad_rows``: (row, fields found)) and a "Skip the bad rows"
    button; the caller wires the button and opens the box."""
    rows = error.bad_rows
    listed = "\n".join(f"row {r}: {f} field{'s' if f != 1 else ''}" for r, f in rows[:30])
    more = f"\n… and {len(rows) - 30:,} more" if len(rows) > 30 else ""
    box = QMessageBox(QMessageBox.Icon.Warning, f"Cannot open {Path(path).name}",
                      f"{len(rows):,} row(s) do not have the {error.expected} fields of the header:\n"
                      f"{listed}{more}\n\nSkip them and open the other rows?", parent=parent)
    box.setObjectName("badRowsDialog")
    box.setDetailedText(str(error))
    skip = box.addButton("Skip the bad rows", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    return box, skip


def drift_box(parent: QWidget, path, drift, differences: list[str]) -> tuple[QMessageBox, object]:
    """The file does not look like the training data: say so plainly, name the columns that moved, and
    offer a "Train on this file" button (wired by the caller)."""
    text = [f"{Path(path).name} does not look like the data the model learnt from: its scores are unreliable."]
    if drift.flagged_far_above:
        text.append(f"{100 * drift.flagged_share:.1f}% of its records are flagged where the threshold's rule "
                    f"expects about {100 * drift.expected_share:.1f}%.")
    if drift.moved_columns:
        text.append("\nColumns that moved: " + ", ".join(drift.moved_columns) + ".")
        text += [f"  • {c.line()}" for c in drift.columns]
    text.append("\nTrain a model on this file instead?")
    box = QMessageBox(QMessageBox.Icon.Warning, "The file does not look like the training data",
                      "\n".join(text), parent=parent)
    box.setObjectName("driftDialog")
    box.setDetailedText("\n".join(differences))
    train = box.addButton("Train on this file", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Keep these scores", QMessageBox.ButtonRole.RejectRole)
    return box, train
