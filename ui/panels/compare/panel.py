"""The Compare screen: pick detectors, Run (one background job, cancellable), read the results on four
pages (metrics and curves, disagreements, contamination study, streaming playback).

The data comes from the main window (``attach``): the loaded file, its schema, the reference file when
the Train screen uses one, and the labels (label column) or else the analyst's verdicts. Jobs run through
``ui.workers`` slots ("compare", "contamination").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTabWidget,
    QWidget,
)

from ui.panels.compare.common import CompareData, hbox, note, vbox
from ui.panels.compare.contamination import ContaminationPage
from ui.panels.compare.disagreements import DisagreementsPage
from ui.panels.compare.metrics import MetricsPage
from ui.panels.compare.playback import PlaybackPage
from ui.widgets import PROGRESS_STEPS, job_controls

DEFAULT_CHECKED = ("pca", "ecod", "iforest")
READY_TEXT = ("Tick the detectors to compare, then Run. Each detector is trained on the same rows with the "
              "same seed.")


class ComparePanel(QWidget):
    queue_requested = Signal(object, str)  # record indices, where they come from
    compared = Signal()
    error = Signal(str, object)  # title, JobError or exception
    use_requested = Signal(str)  # a detector to train for the review queue

    def __init__(self, parent=None, detectors: list[str] | None = None):
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self.data_provider: Callable[[], CompareData | None] | None = None
        self.compare_slot = None  # ui.workers.JobSlot, set by attach()
        self.comparison = None  # engine.compare.Comparison
        self._data: CompareData | None = None  # what the comparison ran on
        if detectors is None:
            from engine.detectors import available_detectors

            detectors = available_detectors()

        self.detector_list = QListWidget()
        self.detector_list.setObjectName("compareDetectors")
        for name in detectors:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in DEFAULT_CHECKED else Qt.CheckState.Unchecked)
            self.detector_list.addItem(item)
        self.run_button, self.cancel_button, self.progress = job_controls(
            "Run comparison", self.run, self.cancel, name="compare")
        self.status = note("Open a file, tick the detectors to compare, then Run. Each detector is trained on the "
                           "same rows with the same seed.", "compareStatus")
        left = QWidget()
        vbox(left, "<b>Detectors</b>", (self.detector_list, 1), hbox(self.run_button, self.cancel_button),
             self.progress, self.status).setContentsMargins(2, 2, 2, 2)

        self.metrics = MetricsPage()
        self.use_button = QPushButton("Use this detector")
        self.use_button.setObjectName("compareUseDetector")
        self.use_button.setToolTip("Train the detector selected in the table on this file (Train screen's "
                                   "settings) and review its queue.")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._use_selected)
        self.metrics.table.itemSelectionChanged.connect(self._selection_changed)
        self.metrics.layout().addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignRight)
        self.disagreements = DisagreementsPage()
        self.disagreements.queue_requested.connect(self.queue_requested)
        self.contamination = ContaminationPage(detectors, self._data_or_say)
        self.contamination.error.connect(self.error)
        self.playback = PlaybackPage()
        self.pages = QTabWidget()
        self.pages.setObjectName("comparePages")
        self.pages.addTab(self.metrics, "Metrics and curves")
        self.pages.addTab(self.disagreements, "Disagreements")
        self.pages.addTab(self.contamination, "Contamination study")
        self.pages.addTab(self.playback, "Streaming playback")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.pages)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 5)
        split.setSizes([220, 1160])
        vbox(self, split).setContentsMargins(2, 2, 2, 2)

    # -- wiring ------------------------------------------------------------------------------------
    def attach(self, window) -> None:
        """Take data, jobs and the review queue from the main window."""
        self.data_provider = lambda: window_data(window)
        self.compare_slot = window.jobs.slot("compare")
        self.contamination.slot = window.jobs.slot("contamination")
        self.queue_requested.connect(lambda rows, why: show_in_queue(window, rows, why))
        self.error.connect(lambda title, e: window.show_error(title, e))
        window.file_loaded.connect(self.clear_results)  # results name rows of the file they ran on
        self.use_requested.connect(lambda name: use_detector(window, name))

    def selected_detector(self) -> str | None:
        """The detector of the metrics table's selected row, or None."""
        rows = self.metrics.table.selectionModel().selectedRows()
        if not rows or self.comparison is None:
            return None
        item = self.metrics.table.item(rows[0].row(), 0)
        return item.text() if item is not None else None

    def _selection_changed(self) -> None:
        name = self.selected_detector()
        self.use_button.setEnabled(name is not None)
        self.use_button.setText(f"Use {name} for the review queue" if name else "Use this detector")

    def _use_selected(self) -> None:
        name = self.selected_detector()
        if name:
            self.use_requested.emit(name)

    def clear_results(self) -> None:
        """Forget the results (another file was opened): their row numbers would name other records."""
        if self.compare_slot is not None:
            self.compare_slot.cancel()
        self._finished()
        self.contamination.clear()
        self.comparison = self._data = None
        self.metrics.clear()
        self._selection_changed()
        self.disagreements.show_comparison(None, None)
        self.playback.show_comparison(None, None)
        self.progress.setValue(0)
        self.status.setText(READY_TEXT)

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

    # -- the comparison ----------------------------------------------------------------------------
    def run(self) -> None:
        detectors = self.checked_detectors()
        if not detectors:
            self.status.setText("Tick at least one detector.")
            return
        data = self._data_or_say(self.status)
        if data is None or self.compare_slot is None:
            return
        self.playback.stop()

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
        self.metrics.show_comparison(comparison)
        self.disagreements.show_comparison(comparison, data)
        self.playback.show_comparison(comparison, data)
        self.compared.emit()

    def shutdown(self) -> None:
        """Stop the playback timer and the jobs (the window's JobManager waits for them)."""
        self.playback.stop()
        for slot in (self.compare_slot, self.contamination.slot):
            if slot is not None:
                slot.cancel()


# -- the main window's side (kept here so the window only creates the panel and calls attach()) ------
def window_data(window) -> CompareData | None:
    """The loaded file, its schema, the reference file when the Train screen uses one, and the labels:
    the label column, else the analyst's verdicts (anomaly/normal) on the rows reviewed."""
    if window.loaded is None or window.schema is None:
        return None
    train = None
    if window.reference is not None and window.train_panel.use_reference():
        train = window.reference.frame
    labels = window.labels
    keys = window.keys
    if labels is not None:
        return CompareData(window.loaded.frame, window.schema, train, np.asarray(labels, dtype=bool), None,
                           f"the label column '{window.schema.label_column}'", keys=keys)
    verdicts = window.queue.verdicts
    reviewed = np.flatnonzero((verdicts == 1) | (verdicts == 2))
    if len(reviewed):
        return CompareData(window.loaded.frame, window.schema, train, verdicts[reviewed] == 1, reviewed,
                           "the analyst's verdicts", keys=keys)
    return CompareData(window.loaded.frame, window.schema, train, keys=keys)


def use_detector(window, name: str) -> None:
    """Train ``name`` for the review queue through the window's normal training path (Session.fit in
    the train job, with the Train screen's settings for it), then show the Review screen."""
    window.train_panel.set_detector(name, {})

    def to_review():  # once; a later training (this one failed or was cancelled) does not switch screens
        window.scored.disconnect(to_review)
        if window.model is not None and window.model.detector == name and window.train_panel.detector() == name:
            window.tabs.setCurrentIndex(window.tabs.indexOf(window.review_splitters[1]))

    window.scored.connect(to_review)
    window.tabs.setCurrentIndex(window.tabs.indexOf(window.train_panel))
    window.start_training()
    window.status_label.setText(f"Training {name} for the review queue (chosen in Compare)…")


def show_in_queue(window, rows, description: str) -> None:
    """Filter the review queue to these records and go there."""
    window.review_panel.show_records(rows, description)
    window.tabs.setCurrentIndex(window.tabs.indexOf(window.review_splitters[1]))
    window.status_label.setText(f"Review queue: {len(rows):,} record(s) {description}.")
