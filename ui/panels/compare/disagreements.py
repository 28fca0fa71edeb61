"""Compare page 2: the records one detector flags and another does not, sent to the review queue."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QPushButton,
    QRadioButton,
    QTableWidgetItem,
    QWidget,
)

from ui.panels.compare.common import CompareData, NumberItem, hbox, note, read_only_table, vbox

ROW_PREVIEW = 500  # rows listed (all of them go to the queue)


class DisagreementsPage(QWidget):
    queue_requested = Signal(object, str)  # record indices, where they come from

    def __init__(self, parent=None):
        super().__init__(parent)
        self.comparison = None
        self._data: CompareData | None = None
        self.pair_combo = QComboBox()
        self.pair_combo.setObjectName("comparePair")
        self.pair_combo.currentIndexChanged.connect(self._show)
        self.only_a = QRadioButton("flagged by A, not by B")
        self.only_a.setObjectName("compareOnlyA")
        self.only_a.setChecked(True)
        self.only_b = QRadioButton("flagged by B, not by A")
        self.only_b.setObjectName("compareOnlyB")
        for r in (self.only_a, self.only_b):
            r.toggled.connect(self._show)
        self.pair_summary = note("Run a comparison of two or more detectors to see where they disagree.",
                                 "comparePairSummary")
        self.pair_rows = read_only_table(1, "comparePairRows")
        self.send_button = QPushButton("Send to the review queue")
        self.send_button.setObjectName("compareSendToQueue")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send_to_queue)
        vbox(self, hbox("Pair:", (self.pair_combo, 1), self.only_a, self.only_b), self.pair_summary,
             (self.pair_rows, 1), (self.send_button, 0, Qt.AlignmentFlag.AlignRight))

    def show_comparison(self, comparison, data: CompareData | None) -> None:
        """List the pairs of ``comparison`` (None: forget the results)."""
        self.comparison, self._data = comparison, data
        self.pair_combo.blockSignals(True)
        self.pair_combo.clear()
        for d in comparison.disagreements if comparison is not None else ():
            self.pair_combo.addItem(f"{d.a} vs {d.b}  ({len(d.only_a):,} / {len(d.only_b):,})", (d.a, d.b))
        self.pair_combo.blockSignals(False)
        self._show()

    def current_disagreement(self) -> tuple[str, str, np.ndarray] | None:
        """(flagged by, not by, rows) of the chosen pair and direction."""
        if self.comparison is None or self.pair_combo.currentIndex() < 0:
            return None
        a, b = self.pair_combo.currentData()
        d = self.comparison.disagreement(a, b)
        return (a, b, d.only_a) if self.only_a.isChecked() else (b, a, d.only_b)

    def _show(self, *_args) -> None:
        cur = self.current_disagreement()
        if cur is None:
            self.pair_rows.setRowCount(0)
            self.send_button.setEnabled(False)
            if self.comparison is not None:
                self.pair_summary.setText("Compare two or more detectors to see where they disagree.")
            return
        a, b, rows = cur
        pa, pb = self.pair_combo.currentData()
        self.only_a.setText(f"flagged by {pa}, not by {pb}")
        self.only_b.setText(f"flagged by {pb}, not by {pa}")
        d = self.comparison.disagreement(pa, pb)
        run_a, run_b = self.comparison.run(a), self.comparison.run(b)
        labels = None if self._data is None or not self._data.full_labels else np.asarray(self._data.labels, bool)
        extra = ""
        if labels is not None and len(rows):
            extra = f" {int(labels[rows].sum()):,} of them are labelled anomalies."
        self.pair_summary.setText(f"{len(rows):,} record(s) flagged by {a} and not by {b}.{extra} Both flag "
                                  f"{d.both:,}; neither flags {d.neither:,}.")
        cols = ["Record key", f"{a} score", f"{b} score"] + (["Label"] if labels is not None else [])
        t = self.pair_rows
        t.setColumnCount(len(cols))
        t.setHorizontalHeaderLabels(cols)
        shown = rows[:ROW_PREVIEW]
        t.setRowCount(len(shown))
        for i, r in enumerate(shown):
            key = QTableWidgetItem(self._data.key_of(r) if self._data is not None else f"{int(r) + 1:,}")
            key.setToolTip(f"row {int(r) + 1:,} of the file")
            t.setItem(i, 0, key)
            t.setItem(i, 1, NumberItem(run_a.scores[r], f"{run_a.scores[r]:.4g}"))
            t.setItem(i, 2, NumberItem(run_b.scores[r], f"{run_b.scores[r]:.4g}"))
            if labels is not None:
                t.setItem(i, 3, QTableWidgetItem("anomaly" if labels[r] else "normal"))
        self.send_button.setEnabled(len(rows) > 0)

    def send_to_queue(self) -> None:
        cur = self.current_disagreement()
        if cur is None:
            return
        a, b, rows = cur
        self.queue_requested.emit(np.asarray(rows, dtype=np.int64), f"flagged by {a}, not by {b} (Compare)")
