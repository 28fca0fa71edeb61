"""Application start-up. WALKING SKELETON: the GUI work (issue 5) builds the real window."""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLE_CSV = Path(__file__).resolve().parent.parent / "resources" / "sample_journal_entries.csv"


def run_app(csv: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(sys.argv)
    label = QLabel(f"Anomaly Desk: {csv or SAMPLE_CSV}")
    label.show()
    return app.exec()
