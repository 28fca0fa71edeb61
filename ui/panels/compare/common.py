"""What the Compare pages share: the data a comparison runs on, detector colours, sortable number cells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.plots import setup_curve_axes


@dataclass(frozen=True)
class CompareData:
    """What a comparison runs on, taken from the main window when Run is clicked."""

    frame: Any  # pandas.DataFrame
    schema: Any  # engine.schema.Schema
    train_frame: Any | None = None
    labels: np.ndarray | None = None  # bool; for every row, or for ``labelled`` rows (verdicts)
    labelled: np.ndarray | None = None
    label_source: str = ""
    keys: np.ndarray | None = None  # the records' keys (Session.keys): what tables show instead of row numbers

    def key_of(self, row: int) -> str:
        """The record's key, or its file row number when there are no keys."""
        return str(self.keys[row]) if self.keys is not None else f"{int(row) + 1:,}"

    @property
    def full_labels(self) -> bool:
        return self.labels is not None and self.labelled is None


# distinct on white, in this order (Tableau 10), then pyqtgraph's hue wheel
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def colour(i: int):
    return pg.mkColor(PALETTE[i]) if i < len(PALETTE) else pg.intColor(i, hues=13, maxValue=200)


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, value: float | None, text: str):
        super().__init__(text)
        self.value = -np.inf if value is None or not np.isfinite(value) else float(value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other):  # noqa: D105 - Qt sorting
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def fmt(v, digits=3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def note(text: str, name: str) -> QLabel:
    """A wrapped line of explanation or status."""
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label


def _fill(box: QBoxLayout, items) -> QBoxLayout:
    for item in items:
        item, *how = item if isinstance(item, tuple) else (item,)
        if isinstance(item, str):
            item = QLabel(item)
        (box.addLayout if isinstance(item, QLayout) else box.addWidget)(item, *how)
    return box


def hbox(*items) -> QHBoxLayout:
    """A row of widgets, layouts and texts (labels); ``(item, stretch[, alignment])`` for a stretch."""
    return _fill(QHBoxLayout(), items)


def vbox(parent: QWidget, *items) -> QVBoxLayout:
    """``parent``'s layout: a column of widgets, layouts and texts, as ``hbox``."""
    return _fill(QVBoxLayout(parent), items)


def read_only_table(columns: int, name: str) -> QTableWidget:
    """A table of fixed-height rows that the analyst reads but does not edit."""
    t = QTableWidget(0, columns)
    t.setObjectName(name)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(22)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return t


def curve_plot(title: str, x_label: str, y_label: str, name: str, diagonal: bool = False,
               legend: tuple[int, int] | None = None) -> pg.PlotWidget:
    """A plot of curves between 0 and 1 on the y axis (``diagonal``: the chance line of a ROC plot)."""
    w = pg.PlotWidget()
    w.setObjectName(name)
    item = w.getPlotItem()
    setup_curve_axes(item, title, x_label, y_label, diagonal)
    item.setYRange(0, 1, padding=0.02)
    if legend is not None:
        w.addLegend(offset=legend)
    return w
