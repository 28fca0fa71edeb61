"""The Compare screen ("model lab"): choose a detector with evidence.

Pick detectors, Run (one background job, cancellable), read a sortable metrics table and the ROC and
PR curves overlaid; see where two detectors disagree and send those records to the review queue;
run a contamination study (AUCROC when known anomalies are mixed into training); play the file back
in arrival order with running precision/recall/accuracy.

The data comes from the main window (``attach``): the loaded file, its schema, the reference file
when the Train screen uses one, and the labels (label column) or else the analyst's verdicts. Jobs
run through ``ui.workers`` slots ("compare", "contamination"); the playback is a QTimer in the GUI
thread stepping through scores already computed (cheap numpy counts per tick).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import AnomalyDeskError
from ui.plots import setup_curve_axes
from ui.widgets import PROGRESS_STEPS, job_controls

DEFAULT_CHECKED = ("pca", "ecod", "iforest")
DEFAULT_SHARES_TEXT = "0, 5, 10, 30, 50"
METRIC_COLUMNS = ("Detector", "AUCROC", "AUCPR", "Precision", "Recall", "F1", "Best F1", "Flagged", "Fit s",
                  "Score s", "Parameters", "Size (bytes)")
PLAYBACK_INTERVAL_MS = 60
ROW_PREVIEW = 500  # rows listed in the disagreement panel (all of them go to the queue)


@dataclass(frozen=True)
class CompareData:
    """What a comparison runs on, taken from the main window when Run is clicked."""

    frame: Any  # pandas.DataFrame
    schema: Any  # engine.schema.Schema
    train_frame: Any | None = None
    labels: np.ndarray | None = None  # bool; for every row, or for ``labelled`` rows (verdicts)
    labelled: np.ndarray | None = None
    label_source: str = ""

    @property
    def full_labels(self) -> bool:
        return self.labels is not None and self.labelled is None


# distinct on white, in this order (Tableau 10), then pyqtgraph's hue wheel
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def colour(i: int):
    return pg.mkColor(PALETTE[i]) if i < len(PALETTE) else pg.intColor(i, hues=13, maxValue=200)


class _NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, value: float | None, text: str):
        super().__init__(text)
        self.value = -np.inf if value is None or not np.isfinite(value) else float(value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other):  # noqa: D105 - Qt sorting
        if isinstance(other, _NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def _fmt(v, digits=3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _overlay_plot(title: str, x_label: str, y_label: str, diagonal: bool = False) -> pg.PlotWidget:
    w = pg.PlotWidget()
    setup_curve_axes(w.getPlotItem(), title, x_label, y_label, diagonal)
    w.addLegend(offset=(10, -10) if not diagonal else (-10, -10))  # PR: bottom left, ROC: bottom right
    return w


class ComparePanel(QWidget):
    queue_requested = Signal(object, str)  # record indices, where they come from
    compared = Signal()
    study_done = Signal()
    playback_finished = Signal()
    error = Signal(str, object)  # title, JobError or exception

    def __init__(self, parent=None, detectors: list[str] | None = None):
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self.data_provider: Callable[[], CompareData | None] | None = None
        self.compare_slot = None  # ui.workers.JobSlot, set by attach()
        self.study_slot = None
        self.comparison = None  # engine.compare.Comparison
        self.study = None  # engine.compare.ContaminationStudy
        self._data: CompareData | None = None  # what the comparison ran on
        self._playback = None  # iterator of engine.compare.PlaybackStep
        self._play_history: dict[str, list[tuple[int, float, float, float]]] = {}
        self.last_step = None
        if detectors is None:
            from engine.detectors import available_detectors

            detectors = available_detectors()

        # -- left: detectors and Run ------------------------------------------------------------
        self.detector_list = QListWidget()
        self.detector_list.setObjectName("compareDetectors")
        for name in detectors:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in DEFAULT_CHECKED else Qt.CheckState.Unchecked)
            self.detector_list.addItem(item)
        self.run_button, self.cancel_button, self.progress = job_controls(
            "Run comparison", self.run, self.cancel, name="compare")
        self.status = QLabel("Open a file, tick the detectors to compare, then Run. Each detector is trained "
                             "on the same rows with the same seed.")
        self.status.setObjectName("compareStatus")
        self.status.setWordWrap(True)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(2, 2, 2, 2)
        lv.addWidget(QLabel("<b>Detectors</b>"))
        lv.addWidget(self.detector_list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        lv.addLayout(buttons)
        lv.addWidget(self.progress)
        lv.addWidget(self.status)

        # -- metrics table and curves -----------------------------------------------------------
        self.table = QTableWidget(0, len(METRIC_COLUMNS))
        self.table.setObjectName("compareTable")
        self.table.setHorizontalHeaderLabels(METRIC_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.threshold_note = QLabel("")
        self.threshold_note.setObjectName("compareThresholdNote")
        self.threshold_note.setWordWrap(True)
        self.roc_plot = _overlay_plot("ROC", "false-positive rate", "true-positive rate", diagonal=True)
        self.roc_plot.setObjectName("compareRoc")
        self.pr_plot = _overlay_plot("Precision-recall", "recall", "precision")
        self.pr_plot.setObjectName("comparePr")
        for p in (self.roc_plot, self.pr_plot):
            p.getPlotItem().setXRange(0, 1, padding=0.02)
            p.getPlotItem().setYRange(0, 1, padding=0.02)
        curves = QHBoxLayout()
        curves.addWidget(self.roc_plot)
        curves.addWidget(self.pr_plot)
        metrics_page = QWidget()
        mv = QVBoxLayout(metrics_page)
        mv.setContentsMargins(2, 2, 2, 2)
        mv.addWidget(self.table, 1)
        mv.addWidget(self.threshold_note)
        mv.addLayout(curves, 3)

        # -- disagreements ----------------------------------------------------------------------
        self.pair_combo = QComboBox()
        self.pair_combo.setObjectName("comparePair")
        self.pair_combo.currentIndexChanged.connect(self._show_disagreement)
        self.only_a = QRadioButton("flagged by A, not by B")
        self.only_a.setObjectName("compareOnlyA")
        self.only_a.setChecked(True)
        self.only_b = QRadioButton("flagged by B, not by A")
        self.only_b.setObjectName("compareOnlyB")
        for r in (self.only_a, self.only_b):
            r.toggled.connect(self._show_disagreement)
        self.pair_summary = QLabel("Run a comparison of two or more detectors to see where they disagree.")
        self.pair_summary.setObjectName("comparePairSummary")
        self.pair_summary.setWordWrap(True)
        self.pair_rows = QTableWidget(0, 1)
        self.pair_rows.setObjectName("comparePairRows")
        self.pair_rows.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.pair_rows.verticalHeader().setVisible(False)
        self.pair_rows.verticalHeader().setDefaultSectionSize(22)
        self.pair_rows.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.send_button = QPushButton("Send to the review queue")
        self.send_button.setObjectName("compareSendToQueue")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send_to_queue)
        pair_top = QHBoxLayout()
        pair_top.addWidget(QLabel("Pair:"))
        pair_top.addWidget(self.pair_combo, 1)
        pair_top.addWidget(self.only_a)
        pair_top.addWidget(self.only_b)
        disagree_page = QWidget()
        dv = QVBoxLayout(disagree_page)
        dv.addLayout(pair_top)
        dv.addWidget(self.pair_summary)
        dv.addWidget(self.pair_rows, 1)
        dv.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignRight)

        # -- contamination study ----------------------------------------------------------------
        self.study_detector = QComboBox()
        self.study_detector.setObjectName("studyDetector")
        self.study_detector.addItems(detectors)
        if "autoencoder" in detectors:
            self.study_detector.setCurrentText("autoencoder")
        self.shares_edit = QLineEdit(DEFAULT_SHARES_TEXT)
        self.shares_edit.setObjectName("studyShares")
        self.shares_edit.setToolTip("percentages of known anomalies among the training rows")
        self.study_button, self.study_cancel, self.study_progress = job_controls(
            "Run study", self.run_study, self.cancel_study, name="study")
        self.study_status = QLabel("How much do anomalies in the training data hurt? The study retrains with a "
                                   "share of known anomalies mixed in and measures AUCROC on held-out rows.")
        self.study_status.setObjectName("studyStatus")
        self.study_status.setWordWrap(True)
        self.study_plot = pg.PlotWidget()
        self.study_plot.setObjectName("studyPlot")
        si = self.study_plot.getPlotItem()
        setup_curve_axes(si, "AUCROC against contamination of the training rows",
                         "anomalies in the training rows (%)", "AUCROC", diagonal=False)
        si.setYRange(0, 1, padding=0.02)
        si.plot([0, 100], [0.5, 0.5], pen=pg.mkPen((170, 170, 170), style=Qt.PenStyle.DashLine))
        self.study_curve = si.plot([], [], pen=pg.mkPen((40, 90, 170), width=2), symbol="o", symbolSize=8,
                                   symbolBrush=(40, 90, 170))
        study_top = QHBoxLayout()
        study_top.addWidget(QLabel("Detector:"))
        study_top.addWidget(self.study_detector)
        study_top.addWidget(QLabel("Anomalies in training (%):"))
        study_top.addWidget(self.shares_edit, 1)
        study_top.addWidget(self.study_button)
        study_top.addWidget(self.study_cancel)
        study_top.addWidget(self.study_progress)
        study_page = QWidget()
        sv = QVBoxLayout(study_page)
        sv.addLayout(study_top)
        sv.addWidget(self.study_status)
        sv.addWidget(self.study_plot, 1)

        # -- streaming playback -----------------------------------------------------------------
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("playbackPlay")
        self.play_button.setCheckable(True)
        self.play_button.setEnabled(False)
        self.play_button.toggled.connect(self._play_toggled)
        self.restart_button = QPushButton("Restart")
        self.restart_button.setObjectName("playbackRestart")
        self.restart_button.setEnabled(False)
        self.restart_button.clicked.connect(self.restart_playback)
        self.speed_spin = QSpinBox()
        self.speed_spin.setObjectName("playbackSpeed")
        self.speed_spin.setRange(1, 100_000)
        self.speed_spin.setValue(50)
        self.speed_spin.setSuffix(" records / step")
        self.play_threshold = QComboBox()
        self.play_threshold.setObjectName("playbackThreshold")
        self.play_threshold.addItem("each detector's default threshold", "default")
        self.play_threshold.addItem("each detector's best-F1 threshold (chosen with the labels)", "best_f1")
        self.play_threshold.currentIndexChanged.connect(lambda _i: self.restart_playback())
        self.play_status = QLabel("Run a comparison on a labelled file, then play it back in arrival order.")
        self.play_status.setObjectName("playbackStatus")
        self.play_status.setWordWrap(True)
        self.counters = QTableWidget(0, 9)
        self.counters.setObjectName("playbackCounters")
        self.counters.setHorizontalHeaderLabels(["Detector", "Seen", "TP", "FP", "FN", "TN", "Precision",
                                                 "Recall", "Accuracy"])
        self.counters.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.counters.verticalHeader().setVisible(False)
        self.counters.verticalHeader().setDefaultSectionSize(22)
        self.counters.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.play_plot = pg.PlotWidget()
        self.play_plot.setObjectName("playbackPlot")
        pi = self.play_plot.getPlotItem()
        setup_curve_axes(pi, "running precision (solid) and recall (dashed)", "records played", "",
                         diagonal=False)
        pi.setYRange(0, 1, padding=0.02)
        self.play_plot.addLegend(offset=(-10, -10))
        self._play_curves: dict[str, tuple] = {}
        self._timer = QTimer(self)
        self._timer.setObjectName("playbackTimer")
        self._timer.setInterval(PLAYBACK_INTERVAL_MS)
        self._timer.timeout.connect(self.step_playback)
        play_top = QHBoxLayout()
        play_top.addWidget(self.play_button)
        play_top.addWidget(self.restart_button)
        play_top.addWidget(QLabel("Speed:"))
        play_top.addWidget(self.speed_spin)
        play_top.addWidget(QLabel("Flag at:"))
        play_top.addWidget(self.play_threshold)
        play_top.addStretch(1)
        play_page = QWidget()
        pv = QVBoxLayout(play_page)
        pv.addLayout(play_top)
        pv.addWidget(self.play_status)
        pv.addWidget(self.counters, 1)
        pv.addWidget(self.play_plot, 2)

        self.pages = QTabWidget()
        self.pages.setObjectName("comparePages")
        self.pages.addTab(metrics_page, "Metrics and curves")
        self.pages.addTab(disagree_page, "Disagreements")
        self.pages.addTab(study_page, "Contamination study")
        self.pages.addTab(play_page, "Streaming playback")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.pages)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 5)
        split.setSizes([220, 1160])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)

    # ------------------------------------------------------------------------------------------
    # wiring
    # ------------------------------------------------------------------------------------------
    def attach(self, window) -> None:
        """Take data, jobs and the review queue from the main window."""
        self.data_provider = lambda: window_data(window)
        self.compare_slot = window.jobs.slot("compare")
        self.study_slot = window.jobs.slot("contamination")
        self.queue_requested.connect(lambda rows, why: show_in_queue(window, rows, why))
        self.error.connect(lambda title, e: window.show_error(title, e))
        window.file_loaded.connect(self.clear_results)  # results name rows of the file they ran on

    def clear_results(self) -> None:
        """Forget the results (another file was opened): their row numbers would name other records."""
        for slot in (self.compare_slot, self.study_slot):
            if slot is not None:
                slot.cancel()
        self._finished()
        self._study_finished()
        self.comparison = self.study = self._data = None
        self.table.setRowCount(0)
        self._clear_curves()
        self.pair_combo.clear()
        self.study_curve.setData([], [])
        self.progress.setValue(0)
        self.study_progress.setValue(0)
        self.restart_playback()
        self.status.setText("Tick the detectors to compare, then Run. Each detector is trained on the same rows "
                            "with the same seed.")

    def checked_detectors(self) -> list[str]:
        out = []
        for i in range(self.detector_list.count()):
            item = self.detector_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.text())
        return out

    def set_checked(self, names) -> None:
        names = set(names)
        for i in range(self.detector_list.count()):
            item = self.detector_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def _data_or_say(self, where: QLabel) -> CompareData | None:
        data = self.data_provider() if self.data_provider else None
        if data is None:
            where.setText("Open a file first (File > Open).")
        return data

    # ------------------------------------------------------------------------------------------
    # the comparison
    # ------------------------------------------------------------------------------------------
    def run(self) -> None:
        detectors = self.checked_detectors()
        if not detectors:
            self.status.setText("Tick at least one detector.")
            return
        data = self._data_or_say(self.status)
        if data is None or self.compare_slot is None:
            return
        self.stop_playback()

        def job(progress, should_stop):
            from engine.compare import compare_detectors

            return compare_detectors(data.frame, data.schema, detectors, train_frame=data.train_frame,
                                     labels=data.labels, labelled=data.labelled, label_source=data.label_source,
                                     progress=progress, should_stop=should_stop, keep_going=True)

        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.setText(f"Training {', '.join(detectors)} in turn on "
                            f"{len(data.train_frame if data.train_frame is not None else data.frame):,} rows…")
        self.compare_slot.start(job, on_progress=self._progress, on_result=lambda c: self._compared(c, data),
                                on_error=self._failed, on_cancel=self._cancelled, on_finish=self._finished)

    def cancel(self) -> None:
        if self.compare_slot is not None:
            self.compare_slot.request_stop()
            self.status.setText("Cancelling…")

    def _progress(self, p) -> None:
        self.progress.setValue(int(PROGRESS_STEPS * p.fraction))
        if p.message:
            self.status.setText(p.message)

    def _failed(self, error) -> None:
        self.status.setText(f"Comparison failed: {error.exception}")
        self.error.emit("Comparison failed", error)

    def _cancelled(self) -> None:
        self.status.setText("Comparison cancelled; the previous results (if any) are kept.")

    def _finished(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _compared(self, comparison, data: CompareData) -> None:
        self._finished()  # the job is done: the buttons come back with its results
        self.comparison, self._data = comparison, data
        self.progress.setValue(PROGRESS_STEPS)
        names = [r.name for r in comparison.runs]
        failed = "".join(f" {n} failed: {why}." for n, why in comparison.failures.items())
        source = "the reference file" if data.train_frame is not None else "this file, labels hidden"
        if comparison.n_labelled:
            self.status.setText(f"Compared {', '.join(names)}, each trained on {comparison.train_rows:,} rows of "
                                f"{source}, against {comparison.label_source} ({comparison.n_anomalies:,} "
                                f"anomalies in {comparison.n_labelled:,} labelled rows).{failed}")
        else:
            self.status.setText(f"Compared {', '.join(names)}: no labels or verdicts yet, so times, sizes and "
                                f"disagreements only.{failed}")
        self._fill_table()
        self._draw_curves()
        self._fill_pairs()
        self.restart_playback()
        self.compared.emit()

    def _fill_table(self) -> None:
        runs = self.comparison.runs
        t = self.table
        t.setSortingEnabled(False)
        t.setRowCount(len(runs))
        for row, r in enumerate(runs):
            m = r.metrics or {}
            name = QTableWidgetItem(r.name)
            name.setForeground(pg.mkColor(colour(row)))
            t.setItem(row, 0, name)
            values = [(m.get("aucroc"), _fmt(m.get("aucroc"))), (m.get("aucpr"), _fmt(m.get("aucpr"))),
                      (m.get("precision"), _fmt(m.get("precision"))), (m.get("recall"), _fmt(m.get("recall"))),
                      (m.get("f1"), _fmt(m.get("f1"))), (m.get("best_f1"), _fmt(m.get("best_f1"))),
                      (float(r.flagged.sum()), f"{int(r.flagged.sum()):,}"),
                      (r.fit_seconds, f"{r.fit_seconds:.2f}"), (r.score_seconds, f"{r.score_seconds:.2f}"),
                      (float(r.parameters), f"{r.parameters:,}"), (float(r.model_bytes), f"{r.model_bytes:,}")]
            for col, (v, text) in enumerate(values, start=1):
                t.setItem(row, col, _NumberItem(v, text))
        t.setSortingEnabled(True)
        t.sortItems(1 if self.comparison.n_labelled else METRIC_COLUMNS.index("Fit s"),
                    Qt.SortOrder.DescendingOrder if self.comparison.n_labelled else Qt.SortOrder.AscendingOrder)
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

    def _draw_curves(self) -> None:
        self._clear_curves()
        for i, r in enumerate(self.comparison.runs):
            pen = pg.mkPen(colour(i), width=2)
            auc = "" if r.metrics is None else f" ({_fmt(r.metrics['aucroc'])})"
            if r.roc is not None:
                self.roc_plot.plot(r.roc["fpr"], r.roc["tpr"], pen=pen, name=f"{r.name}{auc}")
                ap = f" ({_fmt(r.metrics['aucpr'])})"
                self.pr_plot.plot(r.pr["recall"], r.pr["precision"], pen=pen, name=f"{r.name}{ap}")

    # ------------------------------------------------------------------------------------------
    # disagreements
    # ------------------------------------------------------------------------------------------
    def _fill_pairs(self) -> None:
        self.pair_combo.blockSignals(True)
        self.pair_combo.clear()
        for d in self.comparison.disagreements:
            self.pair_combo.addItem(f"{d.a} vs {d.b}  ({len(d.only_a):,} / {len(d.only_b):,})", (d.a, d.b))
        self.pair_combo.blockSignals(False)
        self._show_disagreement()

    def choose_pair(self, a: str, b: str, only_first: bool = True) -> None:
        for i in range(self.pair_combo.count()):
            if tuple(self.pair_combo.itemData(i)) in ((a, b), (b, a)):
                self.pair_combo.setCurrentIndex(i)
                first = self.pair_combo.itemData(i)[0] == a
                (self.only_a if first == only_first else self.only_b).setChecked(True)
                self._show_disagreement()
                return
        raise AnomalyDeskError(f"no comparison of {a} and {b}")

    def current_disagreement(self) -> tuple[str, str, np.ndarray] | None:
        """(flagged by, not by, rows) of the chosen pair and direction."""
        if self.comparison is None or self.pair_combo.currentIndex() < 0:
            return None
        a, b = self.pair_combo.currentData()
        d = self.comparison.disagreement(a, b)
        return (a, b, d.only_a) if self.only_a.isChecked() else (b, a, d.only_b)

    def _show_disagreement(self, *_args) -> None:
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
        labels = self._row_labels()
        extra = ""
        if labels is not None and len(rows):
            extra = f" {int(labels[rows].sum()):,} of them are labelled anomalies."
        self.pair_summary.setText(f"{len(rows):,} record(s) flagged by {a} and not by {b}.{extra} Both flag "
                                  f"{d.both:,}; neither flags {d.neither:,}.")
        cols = ["Record", f"{a} score", f"{b} score"] + (["Label"] if labels is not None else [])
        t = self.pair_rows
        t.setColumnCount(len(cols))
        t.setHorizontalHeaderLabels(cols)
        shown = rows[:ROW_PREVIEW]
        t.setRowCount(len(shown))
        for i, r in enumerate(shown):
            t.setItem(i, 0, _NumberItem(float(r + 1), f"{int(r) + 1:,}"))
            t.setItem(i, 1, _NumberItem(run_a.scores[r], f"{run_a.scores[r]:.4g}"))
            t.setItem(i, 2, _NumberItem(run_b.scores[r], f"{run_b.scores[r]:.4g}"))
            if labels is not None:
                t.setItem(i, 3, QTableWidgetItem("anomaly" if labels[r] else "normal"))
        self.send_button.setEnabled(len(rows) > 0)

    def _row_labels(self) -> np.ndarray | None:
        if self._data is None or not self._data.full_labels:
            return None
        return np.asarray(self._data.labels, dtype=bool)

    def send_to_queue(self) -> None:
        cur = self.current_disagreement()
        if cur is None:
            return
        a, b, rows = cur
        self.queue_requested.emit(np.asarray(rows, dtype=np.int64), f"flagged by {a}, not by {b} (Compare)")

    # ------------------------------------------------------------------------------------------
    # contamination study
    # ------------------------------------------------------------------------------------------
    def shares(self) -> list[float]:
        out = []
        for part in self.shares_edit.text().replace(";", ",").split(","):
            part = part.strip().rstrip("%").strip()
            if not part:
                continue
            try:
                pct = float(part)
            except ValueError:
                raise AnomalyDeskError(f"'{part}' is not a percentage (e.g. {DEFAULT_SHARES_TEXT})") from None
            if not 0 <= pct < 100:
                raise AnomalyDeskError(f"{pct:g}% is outside 0-100")
            out.append(pct / 100.0)
        if not out:
            raise AnomalyDeskError(f"give the percentages to try, e.g. {DEFAULT_SHARES_TEXT}")
        return out

    def run_study(self) -> None:
        data = self._data_or_say(self.study_status)
        if data is None or self.study_slot is None:
            return
        if not data.full_labels:
            self.study_status.setText("The contamination study needs a label column (choose it in the Data "
                                      "screen): it mixes known anomalies into the training rows.")
            return
        try:
            shares = self.shares()
        except AnomalyDeskError as exc:
            self.study_status.setText(str(exc))
            return
        detector = self.study_detector.currentText()

        def job(progress, should_stop):
            from engine.compare import contamination_study

            return contamination_study(data.frame, data.schema, data.labels, detector, shares=shares,
                                       train_frame=data.train_frame, progress=progress, should_stop=should_stop)

        self.study_button.setEnabled(False)
        self.study_cancel.setEnabled(True)
        self.study_progress.setValue(0)
        self.study_status.setText(f"Retraining {detector} at {len(shares)} contamination levels…")
        self.study_slot.start(job, on_progress=self._study_progress, on_result=self._studied,
                              on_error=self._study_failed,
                              on_cancel=lambda: self.study_status.setText("Study cancelled."),
                              on_finish=self._study_finished)

    def cancel_study(self) -> None:
        if self.study_slot is not None:
            self.study_slot.request_stop()

    def _study_progress(self, p) -> None:
        self.study_progress.setValue(int(PROGRESS_STEPS * p.fraction))

    def _study_failed(self, error) -> None:
        self.study_status.setText(f"Study failed: {error.exception}")
        self.error.emit("Contamination study failed", error)

    def _study_finished(self) -> None:
        self.study_button.setEnabled(True)
        self.study_cancel.setEnabled(False)

    def _studied(self, study) -> None:
        self._study_finished()
        self.study = study
        self.study_progress.setValue(PROGRESS_STEPS)
        done = [p for p in study.points if p.aucroc is not None]
        self.study_curve.setData([100 * p.share for p in done], [p.aucroc for p in done])
        figures = ", ".join(f"{100 * p.share:g}%: {p.aucroc:.3f}" for p in done)
        self.study_status.setText(f"{study.detector}, {study.train_rows:,} training rows at every level; AUCROC "
                                  f"on {study.eval_rows:,} held-out rows: {figures}. " + " ".join(study.notes))
        self.study_done.emit()

    # ------------------------------------------------------------------------------------------
    # streaming playback
    # ------------------------------------------------------------------------------------------
    def restart_playback(self) -> None:
        self.stop_playback()
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
        ok = self.comparison is not None and self._data is not None and self._data.full_labels
        self.play_button.setEnabled(ok)
        self.restart_button.setEnabled(ok)
        if not ok:
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

    def playback_thresholds(self) -> dict[str, float]:
        best = self.play_threshold.currentData() == "best_f1"
        return {r.name: float(r.metrics["best_f1_threshold"]) if best and r.metrics else r.threshold
                for r in self.comparison.runs}

    def _start_iterator(self) -> None:
        from engine.compare import arrival_order, replay_scores

        c, data = self.comparison, self._data
        order = arrival_order(data.frame, data.schema)
        cuts = self.playback_thresholds()
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
                self.restart_playback()
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

    def stop_playback(self) -> None:
        self._timer.stop()
        if self.play_button.isChecked():
            self.play_button.blockSignals(True)
            self.play_button.setChecked(False)
            self.play_button.blockSignals(False)
        self.play_button.setText("Play")

    def step_playback(self) -> None:
        """One step of the playback (the timer calls it; tests may call it directly)."""
        if self._playback is None:
            if self.comparison is None or self._data is None or not self._data.full_labels:
                self.stop_playback()
                return
            self._start_iterator()
        self._playback.step = int(self.speed_spin.value())
        try:
            step = next(self._playback)
        except StopIteration:
            self.stop_playback()
            self.playback_finished.emit()
            return
        self.last_step = step
        self._show_counters(step)
        if step.seen >= step.total:
            self.stop_playback()
            self.play_status.setText(f"Played all {step.total:,} records.")
            self.playback_finished.emit()

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

    def shutdown(self) -> None:
        """Stop the playback timer and the jobs (the window's JobManager waits for them)."""
        self.stop_playback()
        for slot in (self.compare_slot, self.study_slot):
            if slot is not None:
                slot.cancel()


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


# ----------------------------------------------------------------------------------------------
# the main window's side (kept here so the window only creates the panel and calls attach())
# ----------------------------------------------------------------------------------------------
def window_data(window) -> CompareData | None:
    """The loaded file, its schema, the reference file when the Train screen uses one, and the labels:
    the label column, else the analyst's verdicts (anomaly/normal) on the rows reviewed."""
    if window.loaded is None or window.schema is None:
        return None
    train = None
    if window.reference is not None and window.train_panel.use_reference():
        train = window.reference.frame
    labels = window.labels
    if labels is not None:
        return CompareData(window.loaded.frame, window.schema, train, np.asarray(labels, dtype=bool), None,
                           f"the label column '{window.schema.label_column}'")
    verdicts = window.queue.verdicts
    reviewed = np.flatnonzero((verdicts == 1) | (verdicts == 2))
    if len(reviewed):
        return CompareData(window.loaded.frame, window.schema, train, verdicts[reviewed] == 1, reviewed,
                           "the analyst's verdicts")
    return CompareData(window.loaded.frame, window.schema, train)


def show_in_queue(window, rows, description: str) -> None:
    """Filter the review queue to these records and go there."""
    window.review_panel.show_records(rows, description)
    window.tabs.setCurrentIndex(window.tabs.indexOf(window.review_splitters[1]))
    window.status_label.setText(f"Review queue: {len(rows):,} record(s) {description}.")


__all__ = ["ComparePanel", "CompareData", "window_data", "show_in_queue"]
