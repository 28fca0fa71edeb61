"""Compare page 4: the file played back in arrival order with each detector's running precision, recall
and accuracy. A QTimer in the GUI thread steps through scores already computed (cheap numpy counts per
tick); no job runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QWidget,
)

from ui.panels.compare.common import CompareData, colour, curve_plot, hbox, note, read_only_table, vbox

PLAYBACK_INTERVAL_MS = 60
COUNTER_COLUMNS = ("Detector", "Seen", "TP", "FP", "FN", "TN", "Precision", "Recall", "Accuracy")


class PlaybackPage(QWidget):
    finished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.comparison = None
        self._data: CompareData | None = None
        self._playback = None  # iterator of engine.compare.PlaybackStep
        self._play_history: dict[str, list[tuple[int, float, float, float]]] = {}
        self._play_curves: dict[str, tuple] = {}
        self.last_step = None
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("playbackPlay")
        self.play_button.setCheckable(True)
        self.play_button.setEnabled(False)
        self.play_button.toggled.connect(self._play_toggled)
        self.restart_button = QPushButton("Restart")
        self.restart_button.setObjectName("playbackRestart")
        self.restart_button.setEnabled(False)
        self.restart_button.clicked.connect(self.restart)
        self.speed_spin = QSpinBox()
        self.speed_spin.setObjectName("playbackSpeed")
        self.speed_spin.setRange(1, 100_000)
        self.speed_spin.setValue(50)
        self.speed_spin.setSuffix(" records / step")
        self.play_threshold = QComboBox()
        self.play_threshold.setObjectName("playbackThreshold")
        self.play_threshold.addItem("each detector's default threshold", "default")
        self.play_threshold.addItem("each detector's best-F1 threshold (chosen with the labels)", "best_f1")
        self.play_threshold.currentIndexChanged.connect(lambda _i: self.restart())
        self.play_status = note("Run a comparison on a labelled file, then play it back in arrival order.",
                                "playbackStatus")
        self.counters = read_only_table(len(COUNTER_COLUMNS), "playbackCounters")
        self.counters.setHorizontalHeaderLabels(COUNTER_COLUMNS)
        self.play_plot = curve_plot("running precision (solid) and recall (dashed)", "records played", "",
                                    "playbackPlot", legend=(-10, -10))
        self._timer = QTimer(self)
        self._timer.setObjectName("playbackTimer")
        self._timer.setInterval(PLAYBACK_INTERVAL_MS)
        self._timer.timeout.connect(self.step)
        top = hbox(self.play_button, self.restart_button, "Speed:", self.speed_spin, "Flag at:", self.play_threshold)
        top.addStretch(1)
        vbox(self, top, self.play_status, (self.counters, 1), (self.play_plot, 2))

    def show_comparison(self, comparison, data: CompareData | None) -> None:
        """Get ready to play ``comparison`` (None: forget the results)."""
        self.comparison, self._data = comparison, data
        self.restart()

    @property
    def ready(self) -> bool:
        return self.comparison is not None and self._data is not None and self._data.full_labels

    def restart(self) -> None:
        self.stop()
        self._playback = None
        self.last_step = None
        self._play_history = {}
        self.counters.setRowCount(0)
        item = self.play_plot.getPlotItem()
        for curves in self._play_curves.values():
            for c in curves:
                item.removeItem(c)
                if item.legend is not None:
                    item.legend.removeItem(c)
        self._play_curves = {}
        self.play_button.setEnabled(self.ready)
        self.restart_button.setEnabled(self.ready)
        if not self.ready:
            if self.comparison is not None:
                self.play_status.setText("Playback needs a label column (choose it in the Data screen).")
            return
        for i, r in enumerate(self.comparison.runs):
            pen = pg.mkPen(colour(i), width=2)
            dashed = pg.mkPen(colour(i), width=1.5, style=Qt.PenStyle.DashLine)
            self._play_curves[r.name] = (self.play_plot.plot([], [], pen=pen, name=r.name),
                                         self.play_plot.plot([], [], pen=dashed))
        self.play_status.setText(f"{self.comparison.rows:,} records ready to play in arrival order, flagging at "
                                 f"{self.play_threshold.currentText()}.")

    def thresholds(self) -> dict[str, float]:
        best = self.play_threshold.currentData() == "best_f1"
        return {r.name: float(r.metrics["best_f1_threshold"]) if best and r.metrics else r.threshold
                for r in self.comparison.runs}

    def _start_iterator(self) -> None:
        from engine.compare import arrival_order, replay_scores

        c, data = self.comparison, self._data
        order = arrival_order(data.frame, data.schema)
        cuts = self.thresholds()
        self._playback = _SpeedAdjustable(
            lambda step, start: replay_scores({r.name: r.scores for r in c.runs}, data.labels, cuts,
                                              order=order[start:], step=step),
            int(self.speed_spin.value()))

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def _play_toggled(self, on: bool) -> None:
        if on:
            if self._playback is None or (self.last_step is not None and self.last_step.seen >= self.last_step.total):
                self.restart()
                self.play_button.blockSignals(True)
                self.play_button.setChecked(True)
                self.play_button.blockSignals(False)
                self._start_iterator()
            self.play_button.setText("Pause")
            self._timer.start()
        else:
            self._timer.stop()
            self.play_button.setText("Play")

    def play(self) -> None:
        if self.play_button.isEnabled():
            self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    def stop(self) -> None:
        self._timer.stop()
        if self.play_button.isChecked():
            self.play_button.blockSignals(True)
            self.play_button.setChecked(False)
            self.play_button.blockSignals(False)
        self.play_button.setText("Play")

    def step(self) -> None:
        """One step of the playback (the timer calls it; tests may call it directly)."""
        if self._playback is None:
            if not self.ready:
                self.stop()
                return
            self._start_iterator()
        self._playback.step = int(self.speed_spin.value())
        try:
            step = next(self._playback)
        except StopIteration:
            self.stop()
            self.finished.emit()
            return
        self.last_step = step
        self._show_counters(step)
        if step.seen >= step.total:
            self.stop()
            self.play_status.setText(f"Played all {step.total:,} records.")
            self.finished.emit()

    def _show_counters(self, step) -> None:
        t = self.counters
        t.setRowCount(len(step.counters))
        for row, (name, c) in enumerate(step.counters.items()):
            cells = [name, f"{c.seen:,}", f"{c.tp:,}", f"{c.fp:,}", f"{c.fn:,}", f"{c.tn:,}",
                     f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.accuracy:.3f}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                t.setItem(row, col, item)
            hist = self._play_history.setdefault(name, [])
            hist.append((c.seen, c.precision, c.recall, c.accuracy))
            if name in self._play_curves:
                h = np.asarray(hist, dtype=float)
                prec, rec = self._play_curves[name]
                prec.setData(h[:, 0], h[:, 1])
                rec.setData(h[:, 0], h[:, 2])
        self.play_status.setText(f"Played {step.seen:,} of {step.total:,} records.")


class _SpeedAdjustable:
    """An iterator of playback steps whose step size can change between steps (the speed box):
    when it changes, a new replay continues from the records already played, counters carried on."""

    def __init__(self, make: Callable[[int, int], Any], step: int):
        self.make, self.step = make, step
        self._it, self._it_step, self._seen = None, None, 0
        self._base: dict | None = None

    def __iter__(self):
        return self

    def __next__(self):
        from engine.compare import Counters, PlaybackStep

        if self._it is None or self._it_step != self.step:
            self._it, self._it_step = self.make(self.step, self._seen), self.step
            self._offset = self._seen
            self._base = getattr(self, "_last", None)
        step = next(self._it)
        counters = step.counters
        if self._base:
            counters = {n: Counters(c.tp + self._base[n].tp, c.fp + self._base[n].fp, c.fn + self._base[n].fn,
                                    c.tn + self._base[n].tn) for n, c in counters.items()}
        self._seen = self._offset + step.seen
        self._last = counters
        return PlaybackStep(seen=self._seen, total=self._offset + step.total, rows=step.rows, counters=counters)
