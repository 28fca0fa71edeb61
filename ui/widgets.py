"""Small widget builders the panels share."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QProgressBar, QPushButton, QSpinBox

PROGRESS_STEPS = 1000  # progress bars run 0..1000: a job's fraction times this


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 normal"``, ``"2 normals"``, ``"1 anomaly"``, ``"0 anomalies"``."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


def job_controls(run_text: str, on_run: Callable[[], object], on_cancel: Callable[[], object], *,
                 name: str) -> tuple[QPushButton, QPushButton, QProgressBar]:
    """The controls of a background job: a run button, a Cancel button that is disabled until the job
    runs, and a 0..PROGRESS_STEPS progress bar. Object names: ``{name}Run``, ``{name}Cancel`` and
    ``{name}Progress``, for tests and style sheets."""
    run = QPushButton(run_text)
    run.setObjectName(f"{name}Run")
    run.clicked.connect(on_run)
    cancel = QPushButton("Cancel")
    cancel.setObjectName(f"{name}Cancel")
    cancel.setEnabled(False)
    cancel.clicked.connect(on_cancel)
    bar = QProgressBar()
    bar.setObjectName(f"{name}Progress")
    bar.setRange(0, PROGRESS_STEPS)
    return run, cancel, bar


class _WheelOnlyWhenFocused:
    """In a scrolled settings form the wheel must scroll the form: a spin box or combo box under the
    pointer takes the wheel only once the analyst has clicked into it (else scrolling past it silently
    changed the setting: found on the Train screen, where scrolling set "early stopping" to 0)."""

    def _no_wheel_focus(self) -> None:
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # goes on to the scroll area


class ScrollSafeSpinBox(_WheelOnlyWhenFocused, QSpinBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._no_wheel_focus()


class ScrollSafeComboBox(_WheelOnlyWhenFocused, QComboBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._no_wheel_focus()
