"""Record detail: why the selected record was flagged, its values beside the model's expectation,
where it sits on the score histogram, and a what-if editor that re-scores the record at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.plots import WHAT_DRIVES, WHY_FLAGGED, ContributionChart, ThresholdHistogram, ValuesPlot

WIDE_ROW = 20  # numeric feature columns from which a record is drawn as a line (a heartbeat)


@dataclass(frozen=True)
class RecordView:
    """Everything the panel shows for one record (immutable, built by the window)."""

    record: int
    key: str
    score: float
    severity: float
    flagged: bool
    columns: list[str]  # feature columns, in the model's order
    values: list  # the record's values for those columns
    expected: list | None  # the model's expectation per column (None entries where it has none)
    shares: np.ndarray  # contribution share per column
    numeric: list[bool]  # which columns are numeric
    verdict: str = ""
    note: str = ""


@dataclass(frozen=True)
class WhatIf:
    score: float
    severity: float
    shares: np.ndarray
    expected: list | None
    before_score: float  # the unchanged record scored the same way, for an honest comparison
    before_severity: float


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return ""
        return f"{float(v):.6g}"
    return str(v)


class DetailPanel(QWidget):
    what_if_changed = Signal(object)  # WhatIf
    rule_requested = Signal(int)  # "Treat records like this as normal…" on this record

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view: RecordView | None = None
        self.scorer: Callable[[int, dict], WhatIf] | None = None  # set by the window
        self.changes: dict[str, object] = {}
        self.last_what_if: WhatIf | None = None
        self._filling = False
        self._sized = False

        self.title = QLabel("Select a record in the queue.")
        self.title.setObjectName("detailTitle")
        self.title.setWordWrap(True)
        self.title.setMinimumHeight(2 * self.title.fontMetrics().height() + 6)
        self.what_if_label = QLabel("")
        self.what_if_label.setObjectName("whatIfLabel")
        self.what_if_label.setWordWrap(True)
        self.reset_button = QPushButton("Reset what-if")
        self.reset_button.setObjectName("resetWhatIf")
        self.reset_button.setEnabled(False)
        self.reset_button.clicked.connect(self.reset_what_if)

        self.rule_button = QPushButton("Treat records like this as normal…")
        self.rule_button.setObjectName("ruleFromRecord")
        self.rule_button.setToolTip("propose a rule on the columns that drove this record's score; edit it, "
                                    "and the records it matches leave the flagged queue")
        self.rule_button.setEnabled(False)
        self.rule_button.clicked.connect(lambda: self.view is not None and self.rule_requested.emit(self.view.record))
        self.chart = ContributionChart()
        self.chart.setObjectName("contributionChart")
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("valuesTable")
        self.table.setHorizontalHeaderLabels(["Column", "Value (edit for what-if)", "Expected", "Share"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked |
                                   QAbstractItemView.EditTrigger.EditKeyPressed |
                                   QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.table.horizontalHeader().setStretchLastSection(True)
        for i, w in enumerate((110, 140, 110)):
            self.table.horizontalHeader().resizeSection(i, w)
        self.table.itemChanged.connect(self._value_edited)
        self.line_plot = ValuesPlot()
        self.line_plot.setObjectName("valuesPlot")
        self.line_plot.setVisible(False)
        self.histogram = ThresholdHistogram(draggable=False, title="where this record sits")
        self.histogram.setObjectName("detailHistogram")
        self.histogram.setMaximumHeight(200)

        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.rule_button)
        head.addWidget(self.reset_button)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(head)
        tl.addWidget(self.what_if_label)
        tl.addWidget(self.chart, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.line_plot)
        self.splitter.addWidget(self.histogram)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter)

    def set_scores(self, scores: np.ndarray, threshold: float | None) -> None:
        self.histogram.set_scores(scores)
        if threshold is not None and np.isfinite(threshold):
            self.histogram.set_threshold(threshold)

    def show_record(self, view: RecordView | None) -> None:
        self.view = view
        self.changes = {}
        self.last_what_if = None
        self.reset_button.setEnabled(False)
        self.what_if_label.setText("")
        self.rule_button.setEnabled(view is not None)
        if view is None:
            self.title.setText("Select a record in the queue.")
            self.table.setRowCount(0)
            self.chart.set_contributions([], np.zeros(0))
            self.histogram.set_marker(None)
            self.line_plot.setVisible(False)
            return
        verdict = f" · verdict <b>{view.verdict}</b>" if view.verdict else ""
        self.title.setText(f"<b>Record {view.record + 1:,}</b> (key {view.key}) · score <b>{view.score:.4g}</b>"
                           f" · severity <b>{view.severity:.1f}</b> · "
                           + ("<span style='color:#c00'><b>flagged</b></span>" if view.flagged else "not flagged")
                           + verdict)
        n_numeric = sum(view.numeric)
        wide = n_numeric >= WIDE_ROW
        self.chart.top = 6 if wide else 10  # a wide row's line plot needs the room
        self.chart.getPlotItem().setTitle(WHY_FLAGGED if view.flagged else WHAT_DRIVES)
        self.chart.set_contributions(view.columns, view.shares)
        self.histogram.set_marker(view.score)
        self._fill_table(view.values, view.expected, view.shares)
        if wide != self.line_plot.isVisible() or not self._sized:
            total = max(sum(self.splitter.sizes()), 600)
            # a wide numeric row (a heartbeat) is read as a line: give the line plot the room
            shares = (0.36, 0.14, 0.32, 0.18) if wide else (0.45, 0.33, 0.0, 0.22)
            self.splitter.setSizes([int(total * f) for f in shares])
            self._sized = True
        self.line_plot.setVisible(wide)
        if wide:
            idx = [i for i, num in enumerate(view.numeric) if num]
            actual = np.array([_num(view.values[i]) for i in idx])
            expected = None if view.expected is None else np.array([_num(view.expected[i]) for i in idx])
            self.line_plot.set_values(actual, expected)

    def _fill_table(self, values: list, expected: list | None, shares: np.ndarray) -> None:
        view = self.view
        self._filling = True
        order = np.argsort(-np.nan_to_num(shares), kind="stable")  # top contributing columns first
        self.table.setRowCount(len(order))
        top = float(np.nanmax(shares)) if len(shares) else 1.0
        for r, i in enumerate(order):
            name = view.columns[i]
            shown = self.changes.get(name, values[i])
            exp = "" if expected is None else _fmt(expected[i])
            cells = (name, _fmt(shown), exp, f"{100 * shares[i]:.1f}%")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if c == 1:
                    flags |= Qt.ItemFlag.ItemIsEditable
                    item.setData(Qt.ItemDataRole.UserRole, name)
                    if name in self.changes:
                        item.setBackground(QBrush(QColor(255, 240, 160)))
                item.setFlags(flags)
                if c == 3 and top > 0:
                    item.setBackground(QBrush(QColor(200, 40, 40, int(150 * shares[i] / top))))
                self.table.setItem(r, c, item)
        self._filling = False

    def _value_edited(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 1 or self.view is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        self.set_what_if(name, item.text())

    def set_what_if(self, column: str, text: str) -> None:
        """Change one value of the record and re-score it (the what-if)."""
        if self.view is None or self.scorer is None:
            return
        i = self.view.columns.index(column)
        value: object = text
        if self.view.numeric[i]:
            try:
                value = float(text)
            except ValueError:
                self.what_if_label.setText(f"<span style='color:#c00'>'{text}' is not a number for "
                                           f"column {column}</span>")
                return
        self.changes[column] = value
        try:
            result = self.scorer(self.view.record, dict(self.changes))
        except Exception as exc:  # noqa: BLE001 - shown in place: the what-if is exploratory
            del self.changes[column]
            self.what_if_label.setText(f"<span style='color:#c00'>What-if not possible: {exc}</span>")
            return
        self.last_what_if = result
        self.reset_button.setEnabled(True)
        changed = ", ".join(f"{k} = {_fmt(v)}" for k, v in self.changes.items())
        arrow = "▲" if result.score > result.before_score else ("▼" if result.score < result.before_score else "=")
        self.what_if_label.setText(
            f"What-if ({changed}): detector score {result.before_score:.4g} → <b>{result.score:.4g}</b> {arrow}"
            f" · severity {result.before_severity:.1f} → <b>{result.severity:.1f}</b>")
        self.chart.set_contributions(self.view.columns, result.shares)
        self.histogram.set_marker(result.score)
        self._fill_table(self.view.values, result.expected if result.expected is not None else self.view.expected,
                         result.shares)
        self.what_if_changed.emit(result)

    def reset_what_if(self) -> None:
        self.show_record(self.view)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan
