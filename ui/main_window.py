"""The main window: menus, the five screens and the wiring between them and the session.

The analyst's state lives in one ``engine.session.Session`` (``window.session``); the panels render it
(``ui.session_views``) and send the analyst's actions to it; long operations run as jobs that call the
session's compute halves in workers (``ui.session_jobs``). This module builds menus and tabs and wires
signals to those, and asks before unsaved work is lost.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter, QTabWidget, QWidget

from engine.errors import AnomalyDeskError
from engine.schema import SchemaOverrides
from engine.session import Session
from ui.data_panel import DataPanel
from ui.detail_panel import DetailPanel
from ui.dialogs import bad_rows_box, drift_box, show_error, show_info
from ui.panels.compare import ComparePanel
from ui.plots import ErrorPlot
from ui.queue_model import SCORE, SEVERITY, QueueModel
from ui.review_panel import CHEAT_SHEET, ReviewPanel
from ui.review_tools import ReviewTools
from ui.session_jobs import SessionJobs
from ui.session_views import APP_NAME, SessionViews
from ui.settings_dialog import AppSettings, SettingsDialog
from ui.threshold_panel import ThresholdPanel
from ui.train_panel import TrainPanel
from ui.workers import JobError, JobManager

SAMPLE_CSV = Path(__file__).resolve().parent.parent / "resources" / "sample_journal_entries.csv"
PROJECT_SUFFIX = ".adproj"
MAX_RECENT = 8
TAB_DATA, TAB_TRAIN, TAB_REVIEW, TAB_THRESHOLD, TAB_COMPARE = range(5)
CSV_FILTER = ("Data files (*.csv *.csv.gz *.txt *.tsv *.parquet *.pq);;CSV files (*.csv *.csv.gz *.txt *.tsv);;"
              "Parquet files (*.parquet *.pq);;All files (*)")  # engine.io.load reads both


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
                 warm_up: bool = True, ask=None):
        """``ask(title, text) -> "save" | "discard" | "cancel"`` answers the unsaved-changes question;
        by default a QMessageBox (``self.unsaved_box`` while it is open)."""
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.settings = settings or QSettings("AnomalyDesk", "AnomalyDesk")
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.app_settings = AppSettings.read(self.settings)
        user = user if user is not None else self.app_settings.reviewer  # Settings' reviewer, default the OS user
        self.user = user
        self.ask = ask or self._ask_with_a_box
        self.unsaved_box: QMessageBox | None = None
        self.jobs = JobManager(self)
        self.error_dialogs: list = []
        self.model_busy = False
        self.session = Session(data_dir=self.data_dir, user=user)
        self.views = SessionViews(self)
        self.actions_ = SessionJobs(self)

        self.queue = QueueModel(self)
        self._build_ui()
        self._build_menus()
        self.views.connect(self.session)
        self.session.events.connect("file", self.file_loaded.emit)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(120)
        self._refresh_timer.timeout.connect(self._refresh_after_verdicts)
        self.review_tools = ReviewTools(self)  # bulk verdicts, rules, review progress, automatic retrain
        self._restore_layout()
        self.update_actions()
        if warm_up:
            self.warm_up()

    # -- the session's state, read-only (the panels and tests read it here) ------------------------
    loaded = property(lambda self: self.session.loaded)
    inferred = property(lambda self: self.session.inferred)
    schema = property(lambda self: self.session.schema)
    overrides = property(lambda self: self.session.overrides)
    keys = property(lambda self: self.session.keys)
    labels = property(lambda self: self.session.labels)
    store = property(lambda self: self.session.store)
    model = property(lambda self: self.session.model)
    result = property(lambda self: self.session.result)
    scores = property(lambda self: self.session.scores)
    severity = property(lambda self: self.session.severity)
    reference = property(lambda self: self.session.reference_file)  # the LoadedFile of known-good rows
    reference_scores = property(lambda self: self.session.reference_scores)
    project_path = property(lambda self: self.session.project_path)

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
        self.detail_panel.scorer = self.views.what_if
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

        s = self.session
        self.data_panel.open_requested.connect(self.choose_file)
        self.data_panel.reference_requested.connect(self.choose_reference)
        self.data_panel.reference_cleared.connect(lambda: self.set_reference(None))
        self.data_panel.overrides_changed.connect(self._overrides_changed)
        self.train_panel.train_requested.connect(self.start_training)
        self.train_panel.cancel_requested.connect(self.cancel_training)
        self.review_panel.verdict_requested.connect(self.give_verdict)
        self.review_panel.undo_requested.connect(self.undo_verdict)
        self.review_panel.note_entered.connect(self.set_note)
        self.review_panel.reason_chosen.connect(self.set_reason)
        self.review_panel.retrain_requested.connect(self.start_retrain)
        self.review_panel.next_batch_requested.connect(self.show_next_batch)
        self.review_panel.cancel_retrain_requested.connect(self.cancel_retrain)
        self.review_panel.current_record_changed.connect(self.views.show_record)
        self.error_plot.record_clicked.connect(self.select_record)
        tp = self.threshold_panel
        tp.rule_requested.connect(lambda method, params: self.guard("Threshold", s.set_threshold, method, **params))
        tp.dynamic_requested.connect(lambda d: self.guard("Threshold", s.set_dynamic, *(d or (None,))))
        tp.costs_changed.connect(s.set_costs)
        tp.suggestion_applied.connect(lambda: self.guard("Threshold", s.apply_suggestion))
        tp.error.connect(lambda exc: self.show_error("Threshold", exc))
        tp.job_slot = self.jobs.slot("curves")
        self.compare_panel.attach(self)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.act_open = self._action(file_menu, "&Open CSV or Parquet…", self.choose_file, QKeySequence.StandardKey.Open)
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
        self.act_settings = self._action(file_menu, "Se&ttings…", self.open_settings)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        review_menu = mb.addMenu("&Review")
        self.act_retrain = self._action(review_menu, "&Retrain with verdicts", self.start_retrain, "Ctrl+R")
        self.act_undo = self._action(review_menu, "&Undo last verdict", self.undo_verdict, "Ctrl+Z")
        self.act_next_batch = self._action(review_menu, "Next &batch to review", self.show_next_batch, "Ctrl+B")
        review_menu.addSeparator()
        self.act_export_verdicts = self._action(review_menu, "Export &verdicts (CSV)…", self.choose_export_verdicts)
        self.act_import_verdicts = self._action(review_menu, "&Import verdicts (CSV)…", self.choose_import_verdicts)

        view_menu = mb.addMenu("&View")
        for i, name in enumerate(("Data", "Train", "Review", "Threshold", "Compare")):
            self._action(view_menu, f"&{i + 1} {name}", lambda _=False, i=i: self.tabs.setCurrentIndex(i),
                         f"Ctrl+{i + 1}")
        help_menu = mb.addMenu("&Help")
        self._action(help_menu, "&User guide", self.show_user_guide)
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        help_menu.addSeparator()
        self._action(help_menu, "&About Anomaly Desk", self.show_about)
        self._update_recent_menu()

    def show_user_guide(self):
        from ui.help import show_user_guide

        self.help_dialog = show_user_guide(self)
        return self.help_dialog

    def show_about(self):
        from ui.help import show_about

        self.help_dialog = show_about(self)
        return self.help_dialog

    def show_shortcuts(self):
        from ui.help import show_shortcuts

        self.help_dialog = show_shortcuts(self, CHEAT_SHEET)
        return self.help_dialog

    def open_settings(self) -> SettingsDialog:
        """File > Settings…: reviewer name and cluster for big files; applied when the dialog is accepted."""
        dialog = SettingsDialog(self, self.app_settings)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.values()))
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def apply_settings(self, values: AppSettings) -> None:
        """Store the settings and use them at once: the next verdicts carry the new reviewer name."""
        values.write(self.settings)
        self.app_settings = values
        self.user = values.reviewer
        self.session.set_user(values.reviewer)
        where = f"big files (over {values.threshold_mb:,} MB) on {values.cluster}" if values.cluster else "no cluster"
        self.status_label.setText(f"Settings saved: reviewer {values.reviewer}; {where}.")

    def is_big(self, path: str | Path) -> bool:
        """Over Settings' size for cluster scoring, with a cluster set."""
        try:
            size = Path(path).stat().st_size if Path(path).is_file() else sum(
                p.stat().st_size for p in Path(path).glob("*.parquet"))
        except OSError:
            return False
        return self.app_settings.uses_cluster_for(size)

    def cluster_note(self, path: str | Path) -> str | None:
        """What to tell the analyst who opens a file over Settings' size for cluster scoring: opening
        reads it all on this machine; the cluster scores it once a model exists."""
        if not self.is_big(path):
            return None
        return (f"{Path(path).name} is over the {self.app_settings.threshold_mb:,} MB set for the cluster. "
                f"Opening reads all of it on this machine. To score it on {self.app_settings.cluster} and review "
                "its top records, train a model on a smaller file of the same source (or open a project), "
                "then use File > Apply model to new file.")

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        return act

    def update_actions(self) -> None:
        s = self.session
        has_file = s.loaded is not None
        has_model = s.model is not None and s.scores is not None
        for act in (self.act_save, self.act_save_as):
            act.setEnabled(has_file)
        for act in (self.act_export, self.act_apply, self.act_save_model, self.act_retrain, self.act_next_batch):
            act.setEnabled(has_model)
        self.review_panel.next_batch_button.setEnabled(has_model)
        self.act_export_verdicts.setEnabled(s.store is not None)
        self.act_import_verdicts.setEnabled(s.store is not None)
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

    def guard(self, title: str, fn, *args, **kwargs):
        """Run ``fn`` in the GUI thread; an error becomes a dialog (and None), the app carries on.
        Returns ``fn``'s value, or True when it returns None."""
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dialog, never a crash
            import traceback

            self.show_error(title, JobError(exc, traceback.format_exc()))
            return None
        return True if value is None else value

    # ------------------------------------------------------------------------------------------
    # unsaved work
    # ------------------------------------------------------------------------------------------
    def _ask_with_a_box(self, title: str, text: str) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("unsavedChanges")
        self.unsaved_box = box
        try:
            answer = box.exec()
        finally:
            self.unsaved_box = None
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")

    def keep_work(self, doing: str) -> bool:
        """Before ``doing`` something that replaces the session: ask about unsaved changes. True = go on."""
        if not self.session.dirty or self.session.loaded is None:
            return True
        answer = self.ask("Unsaved changes", f"The review of {Path(self.session.loaded.path).name} has changes "
                                             f"that are not saved in a project. Save them before {doing}?")
        if answer == "save":
            return self.save_project_clicked()
        return answer == "discard"

    # ------------------------------------------------------------------------------------------
    # files and the reference file
    # ------------------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a CSV or Parquet file", self._last_dir(), CSV_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path, overrides: SchemaOverrides | None = None) -> None:
        """Load a CSV in the background (after asking about unsaved work); the queue fills when it is read."""
        if self.keep_work("opening another file"):
            self.actions_.open_file(str(path), overrides)
            note = self.cluster_note(path)
            if note:
                self.error_dialogs.append(show_info(self, "Big file", note))

    def offer_skip_bad_rows(self, path: str, overrides, error) -> QMessageBox:
        """A file with rows of the wrong length: offer to read it without them (listed on the Data screen
        and counted in reports) instead of only refusing it."""
        box, self.skip_button = bad_rows_box(self, path, error)
        box.buttonClicked.connect(lambda button: button is self.skip_button
                                  and self.actions_.open_file(str(path), overrides, skip_bad_rows=True))
        self.error_dialogs.append(box)
        self.status_label.setText(f"{Path(path).name}: {len(error.bad_rows):,} bad row(s); skip them or fix the file.")
        box.open()
        return box

    def file_opened(self, path: str) -> None:
        self._add_recent(path)
        self.update_actions()

    def choose_reference(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference file of known-good rows", self._last_dir(), CSV_FILTER)
        if path:
            self.set_reference(path)

    def set_reference(self, path: str | Path | None) -> None:
        self.actions_.set_reference(None if path is None else str(path))

    def _overrides_changed(self, overrides: SchemaOverrides) -> None:
        if self.guard("Column roles", self.session.set_overrides, overrides):
            self.views.show_all_verdicts()
            self.status_label.setText("Column roles changed: train again to use them.")

    # ------------------------------------------------------------------------------------------
    # training and retraining
    # ------------------------------------------------------------------------------------------
    def start_training(self) -> None:
        self.actions_.start_training()

    def cancel_training(self) -> None:
        self.jobs.slot("train").request_stop()
        self.train_panel.cancelling()

    def start_retrain(self) -> None:
        self.actions_.start_retrain()

    def cancel_retrain(self) -> None:
        self.jobs.slot("retrain").request_stop()

    # ------------------------------------------------------------------------------------------
    # the selected record and verdicts
    # ------------------------------------------------------------------------------------------
    def select_record(self, record: int) -> None:
        if not self.review_panel.select_record(record):
            self.review_panel.clear_filters()
            self.review_panel.select_record(record)
        self.tabs.setCurrentIndex(TAB_REVIEW)

    def _current_key(self) -> tuple[int, str | None]:
        record = self.review_panel.current_record()
        if record < 0 or self.session.store is None:
            return -1, None
        return record, str(self.session.keys[record])

    def give_verdict(self, verdict: str) -> None:
        record, key = self._current_key()
        if key is None:
            return
        note = self.review_panel.note_edit.text().strip()
        if self.guard("Verdict not saved", self.session.verdict, key, verdict, note=note):
            self.views.show_verdict_of(record)
            self.review_panel.move(1)
            self._refresh_timer.start()

    def set_reason(self, reason: str) -> None:
        record, key = self._current_key()
        if key is not None and self.guard("Reason not saved", self.session.set_reason, key, reason):
            self.status_label.setText(f"Reason saved on record {record + 1:,}." if reason else
                                      f"Reason cleared on record {record + 1:,}.")

    def show_next_batch(self) -> None:
        """Show only the records the review loop picks next (``Session.next_batch``, ten as in
        simulate-review)."""
        batch = self.guard("Next batch", self.session.next_batch)
        if batch is None:  # the error was shown
            return
        self.tabs.setCurrentIndex(TAB_REVIEW)
        self.review_panel.show_records(batch.records, batch.text)
        if len(batch.records):
            self.review_panel.select_record(int(batch.records[0]))
        self.review_panel.view.setFocus()

    def undo_verdict(self) -> None:
        if self.session.store is None:
            return
        entry = self.guard("Undo failed", self.session.undo)
        if entry is True or entry is None:
            self.status_label.setText("Nothing to undo.")
            return
        found = np.flatnonzero(self.session.keys == str(entry.key))
        if not len(found):
            return
        record = int(found[0])
        if len(self.session.last_undone) > 1:  # a bulk verdict: every record of its batch
            self.views.show_all_verdicts()
        self.views.show_verdict_of(record)
        self.review_panel.select_record(record)
        self.status_label.setText(f"Undid the change to record {record + 1:,}.")
        self._refresh_timer.start()

    def set_note(self, note: str) -> None:
        record, key = self._current_key()
        if key is not None and self.guard("Note not saved", self.session.set_note, key, note):
            self.queue.set_note(record, note)
            self.status_label.setText(f"Note saved on record {record + 1:,}.")

    def _refresh_after_verdicts(self) -> None:
        self.views.update_labels()
        self.views.show_record(self.review_panel.current_record())

    # ------------------------------------------------------------------------------------------
    # projects
    # ------------------------------------------------------------------------------------------
    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a review project", self._last_dir(),
                                              f"Anomaly Desk projects (*{PROJECT_SUFFIX});;All files (*)")
        if path:
            self.open_project(path)

    def save_project_clicked(self) -> bool:
        """Ctrl+S: into the open project when it belongs to this data file, else Save As."""
        path = self.session.project_path
        if path is None or not self.session.project_is_for_this_file(path):
            return self.save_project_as()
        return self.save_project(path)

    def save_project_as(self) -> bool:
        start = str(Path(self._last_dir()) / f"review{PROJECT_SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self, "Save the review project", start,
                                              f"Anomaly Desk projects (*{PROJECT_SUFFIX})")
        if not path:
            return False
        if not path.endswith(PROJECT_SUFFIX):
            path += PROJECT_SUFFIX
        return self.save_project(path)

    def save_project(self, path: str | Path) -> bool:
        """Save the review (the model bundle and the scores in force beside it) so work continues the next day."""
        if self.session.loaded is None or not self.guard("Project not saved", self.session.save, path):
            return False
        self._add_recent(str(path))
        self.views.update_title()
        self.status_label.setText(f"Project saved to {path}.")
        return True

    def open_project(self, path: str | Path) -> None:
        if self.keep_work("opening the project"):
            self.actions_.open_project(path)

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
        """Export the queue (CSV/XLSX) or a report (HTML/PDF) of the session's scores in force, in a worker."""
        self.actions_.export(str(path), title, author, notes)

    def choose_apply_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Apply the model to a new file", self._last_dir(), CSV_FILTER)
        if path:
            self.apply_model_to(path)

    def apply_model_to(self, path: str | Path) -> None:
        """Score a new file with the current model, carrying over column roles and threshold; the schema
        differences (missing, extra, changed type, unseen categories) are shown in a dialog."""
        if self.keep_work("applying the model to another file"):
            if self.is_big(path):  # too big for this machine: scored on the cluster, top records reviewed
                self.actions_.apply_model_on_cluster(str(path), self.app_settings.cluster, self.app_settings.top_n)
            else:
                self.actions_.apply_model_to(str(path))

    def offer_training_on(self, path: str | Path, drift, differences: list[str]) -> QMessageBox:
        """The applied file does not look like the training data (engine.drift): offer to train on it
        instead of trusting these scores."""
        box, self.train_here_button = drift_box(self, path, drift, differences)
        box.buttonClicked.connect(lambda button: button is self.train_here_button and self.train_on(path))
        self.error_dialogs.append(box)
        moved = drift.moved_columns
        self.status_label.setText(f"{Path(path).name} does not look like the training data"
                                  + (f" (moved: {', '.join(moved)})" if moved else "") + ".")
        box.open()
        return box

    def train_on(self, path: str | Path) -> None:
        """Open ``path`` as a new file (its own column roles inferred) and go to the Train screen. No
        unsaved-work question: the scores being left came from a model that does not fit this file, and
        the verdicts given on them are already in the verdict store."""

        def to_train_screen():
            self.file_loaded.disconnect(to_train_screen)
            self.tabs.setCurrentIndex(TAB_TRAIN)

        self.file_loaded.connect(to_train_screen)
        self.actions_.open_file(str(path))

    def choose_save_model(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the model bundle", self._last_dir())
        if path and self.model is not None and self.guard("Model not saved", self.model.save, path):
            self.session.model_dir = path
            self.status_label.setText(f"Model saved to {path}.")

    def choose_export_verdicts(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export verdicts", str(Path(self._last_dir()) / "verdicts.csv"),
                                              "CSV (*.csv)")
        if path and self.store is not None:
            n = self.guard("Export failed", self.store.export_csv, path)
            if n is not None:
                self.status_label.setText(f"Exported {n} verdicts to {path}.")

    def choose_import_verdicts(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import verdicts", self._last_dir(), "CSV (*.csv)")
        if path:
            self.import_verdicts(path)

    def import_verdicts(self, path: str | Path) -> None:
        if self.store is None:
            return
        n = self.guard("Import failed", self.session.import_verdicts, path)
        if n is not None:
            self.views.show_all_verdicts()
            self.status_label.setText(f"Imported {0 if n is True else n} verdicts.")

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

    def _splitters(self) -> tuple:
        return (*self.review_splitters, self.data_panel.splitter, self.detail_panel.splitter)

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 880)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        for i, split in enumerate(self._splitters()):
            s = self.settings.value(f"window/splitter{i}")
            if s is not None:
                split.restoreState(s)
        tab = self.settings.value("window/tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        for i, split in enumerate(self._splitters()):
            self.settings.setValue(f"window/splitter{i}", split.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Ask about unsaved work; stop every job (training stops at its next batch), wait for it, close."""
        if not self.keep_work("closing"):
            event.ignore()
            return
        self.save_layout()
        self._refresh_timer.stop()
        self.review_panel._filter_timer.stop()
        self.threshold_panel._live_timer.stop()
        self.compare_panel.shutdown()
        self.jobs.shutdown()
        self.session.close()
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


__all__ = ["MainWindow", "SAMPLE_CSV", "SCORE", "SEVERITY", "QWidget", "AnomalyDeskError"]
