"""The main window: menus, the four screens, and the jobs that feed them.

The window owns the review's state (file, schema, model, scores, verdict store) and hands immutable
pieces of it to the panels. Every long operation runs as a job (ui.workers) whose result comes back
through a signal; the window only ever reads results in the GUI thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QSplitter, QTabWidget, QWidget

from engine.chunked_scoring import score_in_blocks
from engine.errors import AnomalyDeskError
from engine.schema import Role, Schema, SchemaOverrides
from ui.compare_panel import ComparePanel
from ui.data_panel import DataPanel
from ui.detail_panel import DetailPanel, RecordView, WhatIf
from ui.dialogs import show_error, show_info
from ui.plots import ErrorPlot
from ui.queue_model import SCORE, SEVERITY, VERDICTS, QueueModel
from ui.review_panel import CHEAT_SHEET, ReviewPanel
from ui.threshold_panel import ThresholdPanel
from ui.train_panel import TrainPanel
from ui.widgets import PROGRESS_STEPS, counted
from ui.workers import JobError, JobManager, leave_a_core_for_the_gui

APP_NAME = "Anomaly Desk"
SAMPLE_CSV = Path(__file__).resolve().parent.parent / "resources" / "sample_journal_entries.csv"
PROJECT_SUFFIX = ".adproj"
MAX_RECENT = 8
TAB_DATA, TAB_TRAIN, TAB_REVIEW, TAB_THRESHOLD, TAB_COMPARE = range(5)


@dataclass(frozen=True)
class LoadOutcome:
    loaded: object  # engine.io.LoadedFile
    inferred: Schema
    overrides: SchemaOverrides
    keys: np.ndarray
    seconds: float
    # prepared in the worker so the GUI thread only swaps them in (seconds at a million rows)
    columns: tuple | None = None  # QueueModel.column_arrays(frame)
    labels: np.ndarray | None = None
    store: object | None = None  # engine.feedback.VerdictStore, opened and attached in the worker
    matched: dict | None = None
    orphans: list | None = None
    store_error: BaseException | None = None


@dataclass(frozen=True)
class TrainOutcome:
    model: object  # engine.pipeline.AnomalyModel
    result: object  # engine.pipeline.ScoreResult on the whole file
    reference_scores: np.ndarray | None
    seconds: float
    score_order: np.ndarray | None = None  # ascending argsort of the scores, computed in the worker
    default_threshold: object | None = None  # engine.thresholds.Threshold, computed in the worker


@dataclass(frozen=True)
class RetrainOutcome:
    feedback: object  # engine.feedback.FeedbackResult
    result: object | None  # a fresh ScoreResult when the detector was refitted
    score_order: np.ndarray | None = None


def default_data_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".anomaly-desk")


class MainWindow(QMainWindow):
    file_loaded = Signal()
    scored = Signal()
    retrained = Signal()
    exported = Signal(str)
    model_applied = Signal(object)  # engine.model_reuse.SchemaDifferences

    def __init__(self, settings: QSettings | None = None, data_dir: str | Path | None = None, user: str | None = None,
                 warm_up: bool = True):
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("AnomalyDesk", "AnomalyDesk")
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.user = user
        self.jobs = JobManager(self)
        self.error_dialogs: list = []
        self._closing = False

        # review state
        self.loaded = None
        self.inferred: Schema | None = None
        self.overrides = SchemaOverrides()
        self.schema: Schema | None = None
        self.reference = None
        self.model = None
        self.result = None
        self.scores: np.ndarray | None = None
        self.severity: np.ndarray | None = None
        self.reference_scores: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.keys: np.ndarray | None = None
        self._key_index: dict[str, int] | None = None
        self.store = None
        self.feedback_state = None
        self.project_path: Path | None = None
        self.model_dir: str | None = None
        self._pending_project = None
        self._model_busy = False

        self.queue = QueueModel(self)
        self._build_ui()
        self._build_menus()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(120)
        self._refresh_timer.timeout.connect(self._refresh_after_verdicts)
        self._restore_layout()
        self._update_actions()
        if warm_up:
            self.warm_up()

    def warm_up(self) -> None:
        """Import the heavy libraries in the background at start-up. Importing torch holds the GIL
        for most of a second (measured 0.85 s): better while the analyst reads the column roles than
        in the middle of a training run, where it would freeze the window."""

        def job(progress, should_stop):
            import importlib

            for name in ("sklearn.metrics", "torch"):
                if should_stop():
                    return None
                with contextlib.suppress(ImportError):  # no torch: deep detectors say so when chosen
                    importlib.import_module(name)
            return None

        self.jobs.slot("warm-up").start(job, on_finish=_freeze_long_lived_objects)

    # ------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tabs")
        self.data_panel = DataPanel()
        self.train_panel = TrainPanel()
        self.review_panel = ReviewPanel(self.queue)
        self.detail_panel = DetailPanel()
        self.detail_panel.scorer = self.score_what_if
        self.error_plot = ErrorPlot()
        self.threshold_panel = ThresholdPanel()

        top = QSplitter(Qt.Orientation.Horizontal)
        top.setObjectName("reviewSplitter")
        top.addWidget(self.review_panel)
        top.addWidget(self.detail_panel)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        review = QSplitter(Qt.Orientation.Vertical)
        review.setObjectName("reviewVerticalSplitter")
        review.addWidget(top)
        review.addWidget(self.error_plot)
        review.setStretchFactor(0, 3)
        review.setStretchFactor(1, 1)
        review.setSizes([620, 240])
        top.setSizes([820, 560])
        self.review_splitters = (top, review)

        self.tabs.addTab(self.data_panel, "1 · Data")
        self.tabs.addTab(self.train_panel, "2 · Train")
        self.tabs.addTab(review, "3 · Review")
        self.tabs.addTab(self.threshold_panel, "4 · Threshold")
        self.compare_panel = ComparePanel()  # model lab: detectors side by side (ui/compare_panel.py)
        self.tabs.addTab(self.compare_panel, "5 · Compare")
        self.setCentralWidget(self.tabs)
        self.status_label = QLabel("")
        self.statusBar().addWidget(self.status_label, 1)

        self.data_panel.open_requested.connect(self.choose_file)
        self.data_panel.reference_requested.connect(self.choose_reference)
        self.data_panel.reference_cleared.connect(lambda: self.set_reference(None))
        self.data_panel.overrides_changed.connect(self._overrides_changed)
        self.train_panel.train_requested.connect(self.start_training)
        self.train_panel.cancel_requested.connect(self.cancel_training)
        self.review_panel.verdict_requested.connect(self.give_verdict)
        self.review_panel.undo_requested.connect(self.undo_verdict)
        self.review_panel.note_entered.connect(self.set_note)
        self.review_panel.retrain_requested.connect(self.start_retrain)
        self.review_panel.cancel_retrain_requested.connect(self.cancel_retrain)
        self.review_panel.current_record_changed.connect(self._record_selected)
        self.error_plot.record_clicked.connect(self.select_record)
        self.threshold_panel.threshold_changed.connect(self._threshold_changed)
        self.threshold_panel.error.connect(lambda exc: self.show_error("Threshold", exc))
        self.threshold_panel.job_slot = self.jobs.slot("curves")
        self.compare_panel.attach(self)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.act_open = self._action(file_menu, "&Open CSV…", self.choose_file, QKeySequence.StandardKey.Open)
        self.act_reference = self._action(file_menu, "Open &reference file of known-good rows…",
                                          self.choose_reference)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._action(file_menu, "Open the &sample ledger", lambda: self.open_file(SAMPLE_CSV))
        file_menu.addSeparator()
        self._action(file_menu, "Open &project…", self.choose_project, "Ctrl+Shift+O")
        self.act_save = self._action(file_menu, "&Save project", self.save_project_clicked,
                                     QKeySequence.StandardKey.Save)
        self.act_save_as = self._action(file_menu, "Save project &as…", self.save_project_as, "Ctrl+Shift+S")
        file_menu.addSeparator()
        self.act_export = self._action(file_menu, "&Export…", self.choose_export, "Ctrl+E")
        self.act_apply = self._action(file_menu, "Apply model to &new file…", self.choose_apply_model)
        self.act_save_model = self._action(file_menu, "Save &model bundle…", self.choose_save_model)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        review_menu = mb.addMenu("&Review")
        self.act_retrain = self._action(review_menu, "&Retrain with verdicts", self.start_retrain, "Ctrl+R")
        self.act_undo = self._action(review_menu, "&Undo last verdict", self.undo_verdict, "Ctrl+Z")
        review_menu.addSeparator()
        self.act_export_verdicts = self._action(review_menu, "Export &verdicts (CSV)…", self.choose_export_verdicts)
        self.act_import_verdicts = self._action(review_menu, "&Import verdicts (CSV)…", self.choose_import_verdicts)

        view_menu = mb.addMenu("&View")
        for i, name in enumerate(("Data", "Train", "Review", "Threshold", "Compare")):
            self._action(view_menu, f"&{i + 1} {name}", lambda _=False, i=i: self.tabs.setCurrentIndex(i),
                         f"Ctrl+{i + 1}")
        help_menu = mb.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", lambda: show_info(self, "Keyboard shortcuts", CHEAT_SHEET),
                     "F1")
        self._update_recent_menu()

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        return act

    def _update_actions(self) -> None:
        has_file = self.loaded is not None
        has_model = self.model is not None and self.scores is not None
        self.act_save.setEnabled(has_file)
        self.act_save_as.setEnabled(has_file)
        self.act_export.setEnabled(has_model)
        self.act_apply.setEnabled(has_model)
        self.act_save_model.setEnabled(has_model)
        self.act_retrain.setEnabled(has_model)
        self.act_export_verdicts.setEnabled(self.store is not None)
        self.act_import_verdicts.setEnabled(self.store is not None)
        self.review_panel.retrain_button.setEnabled(has_model and not self.jobs.slot("retrain").busy)
        self.train_panel.train_button.setEnabled(has_file and not self.jobs.slot("train").busy)

    # ------------------------------------------------------------------------------------------
    # errors
    # ------------------------------------------------------------------------------------------
    def show_error(self, title: str, error: BaseException | JobError) -> None:
        if isinstance(error, JobError):
            exc, details = error.exception, error.traceback
        else:
            exc, details = error, None
        self.error_dialogs.append(show_error(self, title, exc, details))
        self.status_label.setText(f"{title}: {exc}")

    def _guard(self, title: str, fn, *args):
        """Run ``fn`` in the GUI thread; an engine error becomes a dialog, the app carries on."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dialog, never a crash
            import traceback

            self.show_error(title, JobError(exc, traceback.format_exc()))
            return None

    # ------------------------------------------------------------------------------------------
    # opening files
    # ------------------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a CSV file", self._last_dir(),
                                              "CSV files (*.csv *.csv.gz *.txt *.tsv);;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path, overrides: SchemaOverrides | None = None) -> None:
        """Load a CSV in the background; the queue fills when it is read."""
        path = str(path)
        overrides = overrides or SchemaOverrides()
        self.status_label.setText(f"Reading {path}…")
        self.jobs.slot("train").cancel()
        self.jobs.slot("retrain").cancel()

        db_path = self._verdict_db_path(path)
        user = self.user

        def job(progress, should_stop):
            from engine.feedback import VerdictStore, record_keys
            from engine.io import label_vector, load

            t0 = time.perf_counter()
            progress(0.1, "reading")
            loaded, inferred = load(path)
            schema = overrides.apply(inferred) if (overrides.roles or overrides.label_column is not None) \
                else inferred
            progress(0.6, "computing record keys")
            keys = record_keys(loaded.frame, schema)
            progress(0.7, "preparing the queue")
            columns = QueueModel.column_arrays(loaded.frame)
            labels = None
            if schema.label_column:
                try:
                    labels = label_vector(loaded.frame, schema)
                except AnomalyDeskError:
                    labels = None
            progress(0.85, "attaching the verdicts given earlier")
            store = matched = orphans = error = None
            try:
                store = VerdictStore(db_path, user=user)
                matched, orphans = store.attach(keys)
            except AnomalyDeskError as exc:
                error = exc
            return LoadOutcome(loaded, inferred, overrides, keys, time.perf_counter() - t0, columns, labels,
                               store, matched, orphans, error)

        self.jobs.slot("load").start(job, on_result=self._file_loaded,
                                     on_error=lambda e: self._load_failed(path, e))

    def _load_failed(self, path: str, error: JobError) -> None:
        self._pending_project = None
        self.show_error(f"Cannot open {Path(path).name}", error)

    def _file_loaded(self, outcome: LoadOutcome) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        self.loaded = outcome.loaded
        self.inferred = outcome.inferred
        self.overrides = outcome.overrides
        self.schema = self.overrides.apply(self.inferred)
        self.keys = outcome.keys
        self._key_index = None
        self.model = self.result = self.scores = self.severity = self.reference_scores = None
        self.feedback_state = None
        self.model_dir = None
        frame = self.loaded.frame
        self.queue.set_frame(frame, columns=outcome.columns)
        problems = list(getattr(self.loaded, "problems", []) or []) + list(self.schema.problems or [])
        self.data_panel.set_file(self.loaded.path, len(frame), getattr(self.loaded, "encoding", "utf-8"),
                                 getattr(self.loaded, "delimiter", ","))
        self.data_panel.set_schema(self.inferred, self.overrides, problems)
        if outcome.columns is not None:  # prepared by the load worker
            self.labels = outcome.labels
            self._update_labels(recompute=False)
        else:
            self._update_labels()
        if outcome.store is not None or outcome.store_error is not None:
            self._take_store(outcome.store, outcome.matched, outcome.orphans, outcome.store_error)
        else:
            self._open_store()
        self.review_panel.clear_filters()
        self.review_panel.sort(0, Qt.SortOrder.DescendingOrder)
        self.detail_panel.show_record(None)
        self.error_plot.set_data(np.zeros(0))
        self.setWindowTitle(f"{Path(self.loaded.path).name} · {APP_NAME}")
        self.status_label.setText(f"Opened {self.loaded.path}: {len(frame):,} rows, "
                                  f"{frame.shape[1]} columns in {outcome.seconds:.1f} s. Next: check the roles, "
                                  f"then Train.")
        self._add_recent(self.loaded.path)
        self._update_actions()
        self.file_loaded.emit()
        if self._pending_project is not None:
            project, self._pending_project = self._pending_project, None
            self._continue_project(project)

    def _take_store(self, store, matched, orphans, error) -> None:
        if error is not None:
            self.show_error("Verdicts unavailable", error)
            self.store = None
            return
        self.store = store
        self._show_verdicts(matched, orphans)
        self.review_panel.set_reasons(self.store.reasons())

    def _open_store(self) -> None:
        from engine.feedback import VerdictStore

        path = self._verdict_db_path(self.loaded.path)
        try:
            self.store = VerdictStore(path, user=self.user)
        except AnomalyDeskError as exc:
            self.show_error("Verdicts unavailable", exc)
            self.store = None
            return
        self._attach_verdicts()
        self.review_panel.set_reasons(self.store.reasons())

    def _attach_verdicts(self) -> None:
        if self.store is None or self.keys is None:
            return
        matched, orphans = self.store.attach(self.keys)
        self._show_verdicts(matched, orphans)

    def _show_verdicts(self, matched: dict, orphans: list) -> None:
        verdicts = {i: r.verdict for i, r in matched.items() if r.verdict}
        notes = {i: r.note for i, r in matched.items() if r.note}
        self.queue.set_all_verdicts(verdicts, notes)
        if orphans:
            self.status_label.setText(f"{len(orphans)} stored verdict(s) match no record of this file "
                                      "(kept in the database).")
        self._update_labels(recompute=False)

    def _verdict_db_path(self, data_path: str) -> Path:
        if self._pending_project is not None and self._pending_project.verdict_db:
            return Path(self._pending_project.verdict_db)
        src = str(Path(data_path).resolve())
        digest = hashlib.sha1(src.encode()).hexdigest()[:10]
        return self.data_dir / "verdicts" / f"{Path(src).stem}-{digest}.sqlite"

    def choose_reference(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference file of known-good rows", self._last_dir(),
                                              "CSV files (*.csv *.csv.gz *.txt *.tsv);;All files (*)")
        if path:
            self.set_reference(path)

    def set_reference(self, path: str | Path | None) -> None:
        if path is None:
            self.reference = None
            self.data_panel.set_reference(None)
            self.train_panel.set_reference_available(None)
            return

        def job(progress, should_stop):
            from engine.io import read_csv

            return read_csv(str(path))

        def done(loaded):
            self.reference = loaded
            self.data_panel.set_reference(loaded.path, len(loaded.frame))
            self.train_panel.set_reference_available(Path(loaded.path).name)

        self.jobs.slot("reference").start(job, on_result=done,
                                          on_error=lambda e: self.show_error("Cannot open the reference file", e))

    def _overrides_changed(self, overrides: SchemaOverrides) -> None:
        if self.inferred is None:
            return
        try:
            schema = overrides.apply(self.inferred)
        except (KeyError, AnomalyDeskError) as exc:
            self.show_error("Column roles", AnomalyDeskError(str(exc)))
            return
        old_ident = self.schema.identifier_column if self.schema else None
        self.overrides, self.schema = overrides, schema
        if schema.identifier_column != old_ident:
            from engine.feedback import record_keys

            self.keys = record_keys(self.loaded.frame, schema)
            self._key_index = None
            self._attach_verdicts()
        self._update_labels()
        self.status_label.setText("Column roles changed: train again to use them.")

    # ------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------
    def start_training(self) -> None:
        if self.loaded is None or self.schema is None:
            return
        try:
            params = self.train_panel.params()
        except ValueError as exc:
            self.show_error("Detector settings", AnomalyDeskError(f"a setting is not valid: {exc}"))
            return
        detector, device = self.train_panel.detector(), self.train_panel.device()
        sample = self.train_panel.sample_rows()
        frame, schema = self.loaded.frame, self.schema
        train_frame = self.reference.frame if (self.train_panel.use_reference() and self.reference) else frame
        use_reference = train_frame is not frame

        def job(progress, should_stop):
            from engine.pipeline import AnomalyModel

            t0 = time.perf_counter()
            data = train_frame
            if sample and len(data) > sample:
                # not DataFrame.sample: its legacy RandomState permutes all rows holding the GIL
                # (62 ms at 1M rows on an idle core, 239 ms stall in the benchmark under load)
                rows = np.random.default_rng(0).choice(len(data), size=sample, replace=False)
                data = data.iloc[np.sort(rows)]
            with leave_a_core_for_the_gui():
                model = AnomalyModel(detector=detector, params=params, device=device, seed=0)
                model.fit(data, schema, progress=lambda f, m="", **k: progress(0.85 * f, m, **k),
                          should_stop=should_stop, known_good=use_reference)
                if should_stop():
                    raise _cancelled()
                progress(0.88, f"scoring {len(frame):,} records", device=getattr(model, "device_", None))
                # in row blocks with a pause between them: one 1M-row score() holds the GIL for
                # hundreds of ms at a time and freezes the window (engine.chunked_scoring)
                result = score_in_blocks(model, frame, should_stop=should_stop,
                                         progress=lambda f, m="", **k: progress(0.88 + 0.1 * f, m))
                ref_scores = (score_in_blocks(model, train_frame, should_stop=should_stop).scores
                              if use_reference else None)
            progress(0.99, "ordering the queue")
            order = np.argsort(result.scores, kind="stable")  # numpy sorts without the GIL
            # medians of a million scores: 0.14 s that would otherwise freeze the GUI thread
            from engine.thresholds import default_threshold

            # trained on known-good rows: flag 1% of them, whatever share of the file is anomalous
            default = default_threshold(np.asarray(result.scores, dtype=float), reference_scores=ref_scores)
            progress(1.0, "done")
            return TrainOutcome(model, result, ref_scores, time.perf_counter() - t0, order, default)

        self.train_panel.set_running(True)
        self._model_busy = True
        self.jobs.slot("train").start(job, on_progress=self.train_panel.show_progress,
                                      on_result=self._trained, on_error=self._train_failed,
                                      on_cancel=self._train_cancelled, on_finish=self._train_finished)
        self.status_label.setText(f"Training {detector}…")
        self._update_actions()

    def cancel_training(self) -> None:
        self.jobs.slot("train").request_stop()
        self.train_panel.status.setText("Cancelling…")

    def _train_finished(self) -> None:
        self._model_busy = False
        self.train_panel.set_running(False)
        self._update_actions()

    def _train_cancelled(self) -> None:
        self.train_panel.status.setText("Training cancelled; the previous model (if any) is kept.")
        self.status_label.setText("Training cancelled.")

    def _train_failed(self, error: JobError) -> None:
        self.train_panel.status.setText(f"Training failed: {error.exception}")
        self.show_error("Training failed", error)

    def _trained(self, outcome: TrainOutcome) -> None:
        self._train_finished()
        self.model = outcome.model
        self.model_dir = None
        self.feedback_state = None
        self.reference_scores = outcome.reference_scores
        card_device = getattr(self.model, "device_", "cpu")
        self.train_panel.status.setText(
            f"Trained {self.model.detector} in {outcome.seconds:.1f} s on {card_device}; every record scored.")
        self.train_panel.progress.setValue(PROGRESS_STEPS)
        self.status_label.setText(f"Trained {self.model.detector}: every record scored. Review the queue "
                                  "with the keyboard (A/N/U).")
        self._set_result(outcome.result, score_order=outcome.score_order)
        self._apply_default_threshold(outcome.default_threshold)
        self.tabs.setCurrentIndex(TAB_REVIEW)
        self.review_panel.select_row(0)
        self.review_panel.view.setFocus()
        self.scored.emit()

    def _set_result(self, result, scores=None, severity=None, score_order=None) -> None:
        self.result = result
        self.scores = np.asarray(result.scores if scores is None else scores, dtype=float)
        self.severity = np.asarray(result.severity if severity is None else severity, dtype=float)
        record = self.review_panel.current_record()
        self.queue.set_scores(self.scores, self.severity, score_order)
        if record >= 0:
            self.review_panel.select_record(record)
        self.threshold_panel.set_scores(self.scores, self.reference_scores)
        x, x_label = self._time_axis()
        self.error_plot.set_data(self.scores, x, x_label)
        self.detail_panel.set_scores(self.scores, None)
        self._update_labels(recompute=False)
        self._update_actions()

    def _apply_default_threshold(self, th=None) -> None:
        """``th``: ``thresholds.default_threshold(self.scores)`` when a worker computed it already."""
        from engine import thresholds

        if th is None:  # automatic, else a 1% queue; 1% of the known-good rows with a reference file
            th = thresholds.default_threshold(self.scores, reference_scores=self.reference_scores)
        self.threshold_panel.set_threshold(th.value, th.method, th.explanation)

    def _time_axis(self) -> tuple[np.ndarray | None, str]:
        if self.schema is None or self.loaded is None:
            return None, "position in file"
        for name in self.schema.by_role(Role.DATETIME):
            t = pd.to_datetime(self.loaded.frame[name], errors="coerce")
            if t.notna().mean() > 0.9:
                secs = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=float)
                return np.nan_to_num(secs, nan=np.nanmin(secs)), f"{name} (seconds since 1970)"
        return None, "position in file"

    # ------------------------------------------------------------------------------------------
    # thresholds and labels
    # ------------------------------------------------------------------------------------------
    def _threshold_changed(self, value: float, method: str, dynamic) -> None:
        cut = dynamic if dynamic is not None else value
        self.queue.set_threshold(cut)
        self.error_plot.set_threshold(value, dynamic)
        self.detail_panel.histogram.set_threshold(value)
        self.review_panel._update_counter()
        self._record_selected(self.review_panel.current_record())

    def _update_labels(self, recompute: bool = True) -> None:
        """Ground truth for the threshold figures: the label column, else the verdicts given.
        ``recompute=False`` keeps the label vector (only scores or verdicts changed)."""
        if recompute:
            self.labels = self._label_vector()
        if self.labels is not None:
            self.threshold_panel.set_labels(self.labels, None, f"the label column '{self.schema.label_column}'")
        else:
            reviewed = np.flatnonzero((self.queue.verdicts == 1) | (self.queue.verdicts == 2))
            if len(reviewed):
                self.threshold_panel.set_labels(self.queue.verdicts[reviewed] == 1, reviewed,
                                                "the analyst's verdicts")
            else:
                self.threshold_panel.set_labels(None, None, "")
        if self.scores is not None:
            self.error_plot.set_marks(self.labels, self.queue.verdicts)

    def _label_vector(self) -> np.ndarray | None:
        if self.schema is not None and self.schema.label_column and self.loaded is not None:
            from engine.io import label_vector

            try:
                return label_vector(self.loaded.frame, self.schema)
            except AnomalyDeskError:
                return None
        return None

    # ------------------------------------------------------------------------------------------
    # the selected record
    # ------------------------------------------------------------------------------------------
    def select_record(self, record: int) -> None:
        if not self.review_panel.select_record(record):
            self.review_panel.clear_filters()
            self.review_panel.select_record(record)
        self.tabs.setCurrentIndex(TAB_REVIEW)

    def record_view(self, record: int) -> RecordView | None:
        if record < 0 or self.result is None or self.loaded is None:
            return None
        r = self.result
        frame = self.loaded.frame
        values = [frame[c].iat[record] if c in frame.columns else None for c in r.columns]
        expected = None
        if r.expected is not None:
            expected = [r.expected[c].iat[record] if c in r.expected.columns else None for c in r.columns]
        numeric = [self.schema.column(c).role is Role.NUMERIC if c in self.schema.names else False
                   for c in r.columns]
        cut = self.threshold_panel.current_cut()
        threshold = cut[record] if isinstance(cut, np.ndarray) else cut
        return RecordView(record=record, key=str(self.keys[record]) if self.keys is not None else str(record),
                          score=float(self.scores[record]), severity=float(self.severity[record]),
                          flagged=bool(self.scores[record] >= threshold), columns=list(r.columns),
                          values=values, expected=expected, shares=np.asarray(r.contributions[record]),
                          numeric=numeric, verdict=VERDICTS[int(self.queue.verdicts[record])],
                          note=self.queue.notes.get(record, ""))

    def _record_selected(self, record: int) -> None:
        self.detail_panel.show_record(self.record_view(record))
        if record >= 0 and self.scores is not None:
            self.error_plot.select(record)

    def score_what_if(self, record: int, changes: dict) -> WhatIf:
        """Score the record as it is and with the analyst's changed values (one row each)."""
        if self._model_busy or self.model is None:
            raise AnomalyDeskError("the model is being trained: try the what-if when it is done")
        frame = self.loaded.frame
        row = frame.iloc[[record, record]].copy()
        for column, value in changes.items():
            if column in row.columns:
                if pd.api.types.is_numeric_dtype(row[column]):
                    row[column] = row[column].astype(float)
                else:
                    row[column] = row[column].astype(object)
                row.iloc[1, row.columns.get_loc(column)] = value
        res = self.model.score(row)
        expected = None
        if res.expected is not None:
            expected = [res.expected[c].iat[1] if c in res.expected.columns else None for c in res.columns]
        return WhatIf(score=float(res.scores[1]), severity=float(res.severity[1]),
                      shares=np.asarray(res.contributions[1]), expected=expected,
                      before_score=float(res.scores[0]), before_severity=float(res.severity[0]))

    # ------------------------------------------------------------------------------------------
    # verdicts
    # ------------------------------------------------------------------------------------------
    def key_index(self) -> dict[str, int]:
        if self._key_index is None:
            self._key_index = {str(k): i for i, k in enumerate(self.keys)} if self.keys is not None else {}
        return self._key_index

    def give_verdict(self, verdict: str) -> None:
        record = self.review_panel.current_record()
        if record < 0 or self.store is None:
            return
        note = self.review_panel.note_edit.text().strip()
        reason = self.review_panel.reason()

        def write():
            self.store.set_verdict(str(self.keys[record]), verdict, note=note, reason=reason)

        if self._guard("Verdict not saved", write) is None and not self._verdict_saved(record, verdict):
            return
        self.queue.set_verdict(record, verdict, note)
        self.review_panel.move(1)
        self._refresh_timer.start()

    def _verdict_saved(self, record: int, verdict: str) -> bool:
        rec = self.store.get(str(self.keys[record])) if self.store is not None else None
        return rec is not None and rec.verdict == verdict

    def undo_verdict(self) -> None:
        if self.store is None:
            return
        entry = self._guard("Undo failed", self.store.undo)
        if entry is None:
            self.status_label.setText("Nothing to undo.")
            return
        record = self.key_index().get(str(entry.key))
        if record is None:
            return
        current = self.store.get(str(entry.key))
        self.queue.set_verdict(record, (current.verdict or "") if current else "", current.note if current else "")
        self.review_panel.select_record(record)
        self.status_label.setText(f"Undid the change to record {record + 1:,}.")
        self._refresh_timer.start()

    def set_note(self, note: str) -> None:
        record = self.review_panel.current_record()
        if record < 0 or self.store is None:
            return
        if self._guard("Note not saved", self.store.set_note, str(self.keys[record]), note) is None:
            return
        self.queue.set_note(record, note)
        self.status_label.setText(f"Note saved on record {record + 1:,}.")

    def _refresh_after_verdicts(self) -> None:
        if self.labels is None:
            self._update_labels(recompute=False)
        elif self.scores is not None:
            self.error_plot.set_marks(self.labels, self.queue.verdicts)
        self._record_selected(self.review_panel.current_record())

    # ------------------------------------------------------------------------------------------
    # retraining with verdicts
    # ------------------------------------------------------------------------------------------
    def verdicts_by_row(self) -> dict[int, str]:
        rows = np.flatnonzero(self.queue.verdicts)
        return {int(i): VERDICTS[int(self.queue.verdicts[i])] for i in rows}

    def start_retrain(self) -> None:
        if self.model is None or self.loaded is None:
            return
        verdicts = self.verdicts_by_row()
        model, frame, schema, state = self.model, self.loaded.frame, self.schema, self.feedback_state
        costs = (self.threshold_panel.loss_spin.value(), self.threshold_panel.review_spin.value())

        def job(progress, should_stop):
            from engine.feedback import retrain_with_verdicts

            with leave_a_core_for_the_gui():
                fb = retrain_with_verdicts(model, frame, schema, verdicts, progress=progress,
                                           should_stop=should_stop, state=state, cost_missed=costs[0],
                                           cost_review=costs[1])
                result = score_in_blocks(fb.model, frame, should_stop=should_stop) if fb.refitted else None
            return RetrainOutcome(fb, result, np.argsort(fb.scores, kind="stable"))

        self._model_busy = True
        self.review_panel.set_retraining(True)
        self.review_panel.retrain_status.setText(f"retraining with {len(verdicts)} verdicts…")
        self.jobs.slot("retrain").start(
            job, on_progress=lambda p: self.review_panel.retrain_progress.setValue(int(PROGRESS_STEPS * p.fraction)),
            on_result=self._retrained, on_error=lambda e: self.show_error("Retraining failed", e),
            on_cancel=lambda: self.review_panel.retrain_status.setText("retraining cancelled"),
            on_finish=self._retrain_finished)

    def cancel_retrain(self) -> None:
        self.jobs.slot("retrain").request_stop()

    def _retrain_finished(self) -> None:
        self._model_busy = False
        self.review_panel.set_retraining(False)
        self._update_actions()

    def _retrained(self, outcome: RetrainOutcome) -> None:
        fb = outcome.feedback
        self.model = fb.model
        self.feedback_state = fb.state
        result = outcome.result if outcome.result is not None else self.result
        self._set_result(result, scores=fb.scores, severity=fb.severity, score_order=outcome.score_order)
        self.threshold_panel.set_threshold(fb.threshold, "cost", fb.threshold_explanation)
        self.review_panel.retrain_status.setText(
            f"retrained with {counted(fb.n_anomalies, 'anomaly', 'anomalies')} and "
            f"{counted(fb.n_normals, 'normal')} in {fb.seconds:.1f} s")
        self.review_panel.retrain_progress.setValue(PROGRESS_STEPS)
        self.retrained.emit()

    # ------------------------------------------------------------------------------------------
    # projects
    # ------------------------------------------------------------------------------------------
    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a review project", self._last_dir(),
                                              f"Anomaly Desk projects (*{PROJECT_SUFFIX});;All files (*)")
        if path:
            self.open_project(path)

    def save_project_clicked(self) -> None:
        if self.project_path is None:
            self.save_project_as()
        else:
            self.save_project(self.project_path)

    def save_project_as(self) -> None:
        start = str(Path(self._last_dir()) / f"review{PROJECT_SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self, "Save the review project", start,
                                              f"Anomaly Desk projects (*{PROJECT_SUFFIX})")
        if path:
            if not path.endswith(PROJECT_SUFFIX):
                path += PROJECT_SUFFIX
            self.save_project(path)

    def current_project(self, path: Path):
        from engine.project import Project, ThresholdSetting

        tp = self.threshold_panel
        threshold = ThresholdSetting(
            value=float(tp.value) if np.isfinite(tp.value) else None,
            method=("dynamic" if tp.dynamic is not None else _project_method(tp.method)),
            parameter=float(tp.param_spin.value()),
            window=int(tp.window_spin.value()) if tp.dynamic is not None else None)
        return Project(
            data_file=self.loaded.path, overrides=self.overrides,
            reference_file=self.reference.path if self.reference is not None else None,
            detector=self.train_panel.detector(), params=self.train_panel.params(), model_dir=self.model_dir,
            threshold=threshold, verdict_db=str(self.store.path) if self.store is not None else None,
            user=self.user,
            extra={"loss_per_miss": tp.loss_spin.value(), "cost_per_review": tp.review_spin.value(),
                   "dynamic_percentile": tp.dyn_pct.value(), "threshold_explanation": tp.explanation.text(),
                   "retrained": self.feedback_state is not None})

    def save_project(self, path: str | Path) -> bool:
        """Save the review (and the model bundle beside it) so work continues the next day."""
        if self.loaded is None:
            return False
        path = Path(path)

        def save():
            if self.model is not None and self.scores is not None:
                model_dir = path.with_suffix(".model")
                self.model.save(model_dir)
                self.model_dir = str(model_dir)
            self.current_project(path).save(path)
            return True

        if not self._guard("Project not saved", save):
            return False
        self.project_path = path
        self._add_recent(str(path))
        self.status_label.setText(f"Project saved to {path}.")
        return True

    def open_project(self, path: str | Path) -> None:
        from engine.project import Project

        project = self._guard("Cannot open the project", Project.load, path)
        if project is None:
            return
        self.project_path = Path(path)
        self._pending_project = project
        self.open_file(project.data_file, overrides=project.overrides)

    def _continue_project(self, project) -> None:
        """After the project's data file is loaded: reference file, settings, model, threshold."""
        tp = self.threshold_panel
        extra = project.extra or {}
        for spin, key in ((tp.loss_spin, "loss_per_miss"), (tp.review_spin, "cost_per_review"),
                          (tp.dyn_pct, "dynamic_percentile")):
            if isinstance(extra.get(key), (int, float)):
                spin.setValue(float(extra[key]))
        self._guard("Detector settings", self.train_panel.set_detector, project.detector, project.params)
        if project.reference_file:
            self.set_reference(project.reference_file)
        if not project.model_dir:
            self.status_label.setText("Project opened (no model saved with it yet): train to score.")
            return
        model_dir = project.model_dir
        frame = self.loaded.frame

        def job(progress, should_stop):
            from engine.pipeline import AnomalyModel

            progress(0.1, "opening the model bundle")
            model = AnomalyModel.load(model_dir)
            progress(0.3, f"scoring {len(frame):,} records")
            with leave_a_core_for_the_gui():
                result = score_in_blocks(model, frame, should_stop=should_stop,
                                         progress=lambda f, m="", **k: progress(0.3 + 0.65 * f, m))
            return TrainOutcome(model, result, None, 0.0, np.argsort(result.scores, kind="stable"))

        def done(outcome: TrainOutcome):
            self.model = outcome.model
            self.model_dir = model_dir
            self._set_result(outcome.result, score_order=outcome.score_order)
            th = project.threshold
            if th.window:
                tp.window_spin.setValue(th.window)
                tp.dynamic_check.setChecked(True)
            if th.value is not None:
                tp.set_threshold(th.value, th.method, extra.get("threshold_explanation"))
            else:
                self._apply_default_threshold()
            self.tabs.setCurrentIndex(TAB_REVIEW)
            self.review_panel.select_row(0)
            self.status_label.setText(f"Project {self.project_path.name} reopened.")
            self.scored.emit()

        self.jobs.slot("train").start(job, on_result=done,
                                      on_error=lambda e: self.show_error("Cannot open the project's model", e))

    # ------------------------------------------------------------------------------------------
    # exports and model reuse
    # ------------------------------------------------------------------------------------------
    def choose_export(self) -> None:
        from ui.export_dialog import ExportDialog

        dialog = ExportDialog(self, str(Path(self._last_dir()) / "review.xlsx"),
                              title=f"Review of {Path(self.loaded.path).name}" if self.loaded else "",
                              author=self.user or "")
        dialog.accepted.connect(lambda: self.export(dialog.path(), title=dialog.title(), author=dialog.author(),
                                                    notes=dialog.notes()))
        self.export_dialog = dialog
        dialog.open()

    def export(self, path: str | Path, title: str = "Anomaly Desk report", author: str = "", notes: str = "") -> None:
        """Export the queue (CSV/XLSX) or a report (HTML/PDF) through engine.reports, in a worker."""
        if self.result is None:
            return
        path = str(path)
        ctx = self._guard("Export failed", self._report_context, title, author, notes)
        if ctx is None:
            return

        def job(progress, should_stop):
            from engine.reports import build_report

            return build_report(path, None, ctx, progress=progress)

        def done(_result):
            self.status_label.setText(f"Exported {path}.")
            self.exported.emit(path)

        self.jobs.slot("export").start(job, on_result=done, on_error=lambda e: self.show_error("Export failed", e))

    def _report_context(self, title: str, author: str, notes: str):
        from engine.reports import make_report_context

        verdicts = self.store.all() if self.store is not None else {}
        cut = self.threshold_panel.current_cut()
        model_metadata = None
        if self.model_dir:
            from engine.model_reuse import model_metadata as read_metadata

            model_metadata = read_metadata(self.model_dir, self.model)
        return make_report_context(self.loaded.frame, self.schema, self._current_score_result(),
                                   keys=[str(k) for k in self.keys] if self.keys is not None else None,
                                   verdicts=verdicts, threshold=float(np.mean(cut)),
                                   threshold_method=self.threshold_panel.explanation.text(),
                                   model=None if model_metadata else self.model, model_metadata=model_metadata,
                                   file=self.loaded.path, title=title, author=author, notes=notes,
                                   labels=self.labels)

    def _current_score_result(self):
        from dataclasses import replace

        return replace(self.result, scores=self.scores, severity=self.severity)

    def choose_apply_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Apply the model to a new file", self._last_dir(),
                                              "CSV files (*.csv *.csv.gz *.txt *.tsv);;All files (*)")
        if path:
            self.apply_model_to(path)

    def apply_model_to(self, path: str | Path) -> None:
        """Score a new file with the current model, carrying over column roles and threshold; the schema
        differences (missing, extra, changed type, unseen categories) are shown in a dialog."""
        if self.model is None:
            return
        model = self.model
        threshold = float(self.threshold_panel.value) if np.isfinite(self.threshold_panel.value) else None
        path = str(path)

        def job(progress, should_stop):
            from engine.feedback import record_keys
            from engine.model_reuse import apply_model

            applied = apply_model(model, path, threshold=threshold, progress=progress)
            return applied, record_keys(applied.frame, applied.schema)

        def done(outcome):
            from engine.io import LoadedFile

            applied, keys = outcome

            self.jobs.slot("load").cancel()
            loaded = LoadedFile(path=applied.file, frame=applied.frame)
            self._file_loaded(LoadOutcome(loaded, applied.schema, SchemaOverrides(),
                                          keys, 0.0))
            self.model = model
            self._set_result(applied.result)
            if applied.threshold is not None:
                self.threshold_panel.set_threshold(applied.threshold, "manual",
                                                   f"Carried over with the model ({applied.threshold_method}).")
            else:
                self._apply_default_threshold()
            lines = applied.differences.lines() or ["The file has exactly the model's columns and types."]
            self.error_dialogs.append(show_info(self, "Model applied", "\n".join(lines)))
            self.tabs.setCurrentIndex(TAB_REVIEW)
            self.model_applied.emit(applied.differences)

        self.jobs.slot("apply").start(job, on_result=done,
                                      on_error=lambda e: self.show_error("Cannot apply the model", e))

    def choose_save_model(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the model bundle", self._last_dir())
        if path and self.model is not None and self._guard("Model not saved", self.model.save, path) is not None:
            self.model_dir = path
            self.status_label.setText(f"Model saved to {path}.")

    def choose_export_verdicts(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export verdicts", str(Path(self._last_dir()) / "verdicts.csv"),
                                              "CSV (*.csv)")
        if path and self.store is not None:
            n = self._guard("Export failed", self.store.export_csv, path)
            if n is not None:
                self.status_label.setText(f"Exported {n} verdicts to {path}.")

    def choose_import_verdicts(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import verdicts", self._last_dir(), "CSV (*.csv)")
        if path:
            self.import_verdicts(path)

    def import_verdicts(self, path: str | Path) -> None:
        if self.store is None:
            return
        n = self._guard("Import failed", self.store.import_csv, path)
        if n is not None:
            self._attach_verdicts()
            self.status_label.setText(f"Imported {n} verdicts.")

    # ------------------------------------------------------------------------------------------
    # window state, recent files, drag and drop, closing
    # ------------------------------------------------------------------------------------------
    def _last_dir(self) -> str:
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def recent_files(self) -> list[str]:
        value = self.settings.value("recentFiles", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_files() if p != path]
        self.settings.setValue("recentFiles", [path, *recent][:MAX_RECENT])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for p in recent:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self._open_any(p))
        self.recent_menu.setEnabled(bool(recent))

    def _open_any(self, path: str) -> None:
        if path.endswith(PROJECT_SUFFIX):
            self.open_project(path)
        else:
            self.open_file(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self._open_any(url.toLocalFile())
                event.acceptProposedAction()
                return

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 880)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        for i, split in enumerate((*self.review_splitters, self.data_panel.splitter, self.detail_panel.splitter)):
            s = self.settings.value(f"window/splitter{i}")
            if s is not None:
                split.restoreState(s)
        tab = self.settings.value("window/tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        for i, split in enumerate((*self.review_splitters, self.data_panel.splitter, self.detail_panel.splitter)):
            self.settings.setValue(f"window/splitter{i}", split.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Stop every job (training stops at its next batch) and wait for it, then close."""
        self._closing = True
        self.save_layout()
        self._refresh_timer.stop()
        self.review_panel._filter_timer.stop()
        self.threshold_panel._live_timer.stop()
        self.compare_panel.shutdown()
        self.jobs.shutdown()
        if self.store is not None:
            self.store.close()
            self.store = None
        for box in self.error_dialogs:
            box.close()
        super().closeEvent(event)


def _freeze_long_lived_objects() -> None:
    """After the start-up imports: move every object the cyclic garbage collector tracks (about 300k
    once Qt, pyqtgraph, pandas, scikit-learn and torch are imported) to its permanent generation.
    Each full collection walks them all while holding the GIL: 0.5 s measured on 2 loaded cores, and
    1.1-1.2 s inside the 1M-row benchmark, where it was the longest stall while a model scored (a
    job's allocations trigger it, in whichever thread). Module-level objects live as long as the
    process; reference counting still frees frozen objects (only cyclic garbage that exists right now
    stays, and a full collection first would itself freeze the window)."""
    import gc

    gc.freeze()


def _project_method(method: str) -> str:
    from engine.project import THRESHOLD_METHODS

    if method in THRESHOLD_METHODS:
        return method
    if method.startswith("auto"):
        return "automatic"
    return {"min_cost": "cost"}.get(method, "manual")


def _cancelled():
    from engine.errors import Cancelled

    return Cancelled("training was cancelled")


__all__ = ["MainWindow", "SAMPLE_CSV", "SCORE", "SEVERITY", "QWidget"]
