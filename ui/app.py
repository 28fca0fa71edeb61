"""Application start-up: ``run_app(csv)`` opens the main window (on the bundled sample when no file
is given) and runs the event loop."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

SAMPLE_CSV = Path(__file__).resolve().parent.parent / "resources" / "sample_journal_entries.csv"


def create_window(csv: str | None = None, settings=None, data_dir=None, user: str | None = None):
    """The main window with a file opening (the sample when ``csv`` is None); needs a QApplication."""
    from ui.main_window import MainWindow

    window = MainWindow(settings=settings, data_dir=data_dir, user=user)
    window.open_file(csv or SAMPLE_CSV)
    return window


def create_application(argv: list[str] | None = None):
    """The QApplication (the running one, else a new one) with the application's process-wide
    settings: its name, and pyqtgraph's colours (ui.plots.configure_plots)."""
    from PySide6.QtWidgets import QApplication

    from ui.plots import configure_plots

    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("Anomaly Desk")
    app.setOrganizationName("AnomalyDesk")
    configure_plots()
    return app


def run_app(csv: str | None = None) -> int:
    app = create_application()
    window = create_window(csv)

    def excepthook(exc_type, exc, tb):
        # an unexpected error in a slot becomes a dialog; the application keeps running
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        window.show_error("Unexpected error", _job_error(exc, "".join(traceback.format_exception(exc_type, exc, tb))))

    sys.excepthook = excepthook
    window.show()
    try:
        return app.exec()
    finally:
        sys.excepthook = sys.__excepthook__


def _job_error(exc, text):
    from ui.workers import JobError

    return JobError(exc, text)
