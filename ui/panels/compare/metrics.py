"""Compare page 1: the metrics table (sortable) and the ROC and precision-recall curves overlaid."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidgetItem,
    QWidget,
)

from ui.panels.compare.common import NumberItem, colour, curve_plot, fmt, hbox, note, read_only_table, vbox

METRIC_COLUMNS = ("Detector", "AUCROC", "AUCPR", "Precision", "Recall", "F1", "Best F1", "Flagged", "Fit s",
                  "Score s", "Parameters", "Size (bytes)")


class MetricsPage(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = read_only_table(len(METRIC_COLUMNS), "compareTable")
        self.table.setHorizontalHeaderLabels(METRIC_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setSortingEnabled(True)
        self.threshold_note = note("", "compareThresholdNote")
        # legends: PR bottom left, ROC bottom right
        self.roc_plot = curve_plot("ROC", "false-positive rate", "true-positive rate", "compareRoc", diagonal=True,
                                   legend=(-10, -10))
        self.pr_plot = curve_plot("Precision-recall", "recall", "precision", "comparePr", legend=(10, -10))
        for p in (self.roc_plot, self.pr_plot):
            p.getPlotItem().setXRange(0, 1, padding=0.02)
        vbox(self, (self.table, 1), self.threshold_note, (hbox(self.roc_plot, self.pr_plot), 3)).setContentsMargins(2, 2, 2, 2)

    def show_comparison(self, comparison) -> None:
        self._fill_table(comparison)
        self._draw_curves(comparison)

    def clear(self) -> None:
        self.table.setRowCount(0)
        self._clear_curves()

    def _fill_table(self, comparison) -> None:
        runs = comparison.runs
        t = self.table
        t.setSortingEnabled(False)
        t.setRowCount(len(runs))
        for row, r in enumerate(runs):
            m = r.metrics or {}
            name = QTableWidgetItem(r.name)
            name.setForeground(pg.mkColor(colour(row)))
            t.setItem(row, 0, name)
            values = [(m.get(k), fmt(m.get(k))) for k in ("aucroc", "aucpr", "precision", "recall", "f1", "best_f1")]
            values += [(float(r.flagged.sum()), f"{int(r.flagged.sum()):,}"),
                       (r.fit_seconds, f"{r.fit_seconds:.2f}"), (r.score_seconds, f"{r.score_seconds:.2f}"),
                       (float(r.parameters), f"{r.parameters:,}"), (float(r.model_bytes), f"{r.model_bytes:,}")]
            for col, (v, text) in enumerate(values, start=1):
                t.setItem(row, col, NumberItem(v, text))
        t.setSortingEnabled(True)
        t.sortItems(1 if comparison.n_labelled else METRIC_COLUMNS.index("Fit s"),
                    Qt.SortOrder.DescendingOrder if comparison.n_labelled else Qt.SortOrder.AscendingOrder)
        methods = sorted({r.threshold_method for r in runs})
        rule = ("the score that 1% of the reference file's known-good rows exceed" if "target_fpr" in methods
                else "the automatic rule, or the top 1% when it would flag nothing or more than 5%")
        self.threshold_note.setText(
            f"Precision, recall and F1 at each detector's default threshold ({rule}): {', '.join(methods)}. "
            "Best F1: at the best threshold for the labels (an upper bound). Size: bytes of the saved state.")

    def table_values(self) -> dict[str, dict[str, str]]:
        """The metrics table as shown (detector -> column -> text), in the table's current order."""
        out = {}
        for row in range(self.table.rowCount()):
            name = self.table.item(row, 0).text()
            out[name] = {METRIC_COLUMNS[c]: self.table.item(row, c).text() for c in range(1, len(METRIC_COLUMNS))}
        return out

    def _clear_curves(self) -> None:
        for plot in (self.roc_plot, self.pr_plot):
            item = plot.getPlotItem()
            for curve in [c for c in item.listDataItems() if c.name()]:
                item.removeItem(curve)
                if item.legend is not None:
                    item.legend.removeItem(curve)

    def _draw_curves(self, comparison) -> None:
        self._clear_curves()
        for i, r in enumerate(comparison.runs):
            pen = pg.mkPen(colour(i), width=2)
            auc = "" if r.metrics is None else f" ({fmt(r.metrics['aucroc'])})"
            if r.roc is not None:
                self.roc_plot.plot(r.roc["fpr"], r.roc["tpr"], pen=pen, name=f"{r.name}{auc}")
                ap = f" ({fmt(r.metrics['aucpr'])})"
                self.pr_plot.plot(r.pr["recall"], r.pr["precision"], pen=pen, name=f"{r.name}{ap}")
