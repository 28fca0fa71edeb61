"""The window's background jobs: each runs one compute half of a ``Session`` method in a worker
(``engine.session``: read, fit, rerank, read_project...) and adopts its outcome in the GUI thread.

No engine workflow here: what a job computes is the session's; this module only says which slot it
runs in, what the panels show while it runs and which error title a failure gets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject

from engine.errors import Cancelled
from ui.widgets import PROGRESS_STEPS
from ui.workers import JobError, leave_a_core_for_the_gui

TAB_REVIEW = 2


class SessionJobs(QObject):
    """Starts and finishes the jobs of ``window`` (its ``session``, ``jobs`` and panels)."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window

    @property
    def s(self):
        return self.w.session

    def _adopt(self, title: str, fn, *args) -> bool:
        """Adopt an outcome; an outcome for a file no longer open is dropped quietly."""
        try:
            fn(*args)
        except Cancelled:
            return False
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dialog, never a crash
            import traceback

            self.w.show_error(title, JobError(exc, traceback.format_exc()))
            return False
        return True

    # -- files ---------------------------------------------------------------------------------------
    def open_file(self, path: str, overrides=None, skip_bad_rows: bool = False) -> None:
        s = self.s
        self.w.status_label.setText(f"Reading {path}…")
        for name in ("train", "retrain", "project", "reference"):
            self.w.jobs.slot(name).cancel()

        def job(progress, should_stop):
            from ui.queue_model import QueueModel

            outcome = s.read(path, overrides, progress=progress, should_stop=should_stop, skip_bad_rows=skip_bad_rows)
            progress(0.9, "preparing the queue")
            return outcome, QueueModel.column_arrays(outcome.loaded.frame)

        def done(result):
            outcome, columns = result
            self.w.views.prepared = (outcome.loaded.frame, columns)
            n = len(outcome.loaded.frame)
            if self._adopt("Verdicts unavailable", s.adopt, outcome) or s.loaded is outcome.loaded:
                skipped = len(s.loaded.skipped_rows)
                self.w.status_label.setText(f"Opened {s.loaded.path}: {n:,} rows, {s.frame.shape[1]} columns"
                                            + (f" ({skipped:,} bad rows skipped)" if skipped else "")
                                            + ". Next: check the roles, then Train.")
                self.w.file_opened(s.loaded.path)

        def failed(error: JobError) -> None:
            from engine.errors import BadRowsError

            if isinstance(error.exception, BadRowsError) and error.exception.bad_rows:
                self.w.offer_skip_bad_rows(path, overrides, error.exception)
            else:
                self.w.show_error(f"Cannot open {Path(path).name}", error)

        self.w.jobs.slot("load").start(job, on_result=done, on_error=failed)

    def set_reference(self, path) -> None:
        s = self.s
        if path is None:
            s.set_reference(None)
            return

        def job(progress, should_stop):
            return s.read_reference(path)

        self.w.jobs.slot("reference").start(
            job, on_result=lambda ref: self._adopt("Cannot use the reference file", s.set_reference, ref),
            on_error=lambda e: self.w.show_error("Cannot use the reference file", e))

    # -- training ------------------------------------------------------------------------------------
    def start_training(self) -> None:
        w, s = self.w, self.s
        if s.loaded is None:
            return
        try:
            params = w.train_panel.params()
        except ValueError as exc:
            from engine.errors import AnomalyDeskError

            w.show_error("Detector settings", AnomalyDeskError(f"a setting is not valid: {exc}"))
            return
        detector, device, sample = w.train_panel.detector(), w.train_panel.device(), w.train_panel.sample_rows()
        use_reference = w.train_panel.use_reference() and s.reference_file is not None

        def job(progress, should_stop):
            with leave_a_core_for_the_gui():
                return s.fit(detector, seed=0, device=device, sample_rows=sample, use_reference=use_reference,
                             progress=progress, should_stop=should_stop, **params)

        w.train_panel.set_running(True)
        w.model_busy = True
        w.jobs.slot("train").start(job, on_progress=w.train_panel.show_progress, on_result=self._trained,
                                   on_error=self._train_failed, on_cancel=self._train_cancelled,
                                   on_finish=self._train_finished)
        w.status_label.setText(f"Training {detector}…")
        w.update_actions()

    def _train_finished(self) -> None:
        self.w.model_busy = False
        self.w.train_panel.set_running(False)
        self.w.update_actions()

    def _train_cancelled(self) -> None:
        self.w.train_panel.status.setText("Training cancelled; the previous model (if any) is kept.")
        self.w.status_label.setText("Training cancelled.")

    def _train_failed(self, error: JobError) -> None:
        self.w.train_panel.status.setText(f"Training failed: {error.exception}")
        self.w.show_error("Training failed", error)

    def _trained(self, outcome) -> None:
        w = self.w
        self._train_finished()
        if not self._adopt("Training failed", self.s.adopt_training, outcome):
            return
        model = self.s.model
        w.train_panel.status.setText(f"Trained {model.detector} in {model.fit_seconds_:.1f} s on "
                                     f"{getattr(model, 'device_', 'cpu')}; every record scored.")
        w.train_panel.progress.setValue(PROGRESS_STEPS)
        w.status_label.setText(f"Trained {model.detector}: every record scored. Review the queue with the "
                               "keyboard (A/N/U).")
        w.tabs.setCurrentIndex(TAB_REVIEW)
        w.review_panel.select_row(0)
        w.review_panel.view.setFocus()
        w.scored.emit()

    # -- retraining ----------------------------------------------------------------------------------
    def start_retrain(self) -> None:
        w, s = self.w, self.s
        if s.model is None or w.jobs.slot("retrain").busy:
            return

        def job(progress, should_stop):
            with leave_a_core_for_the_gui():
                return s.rerank(progress=progress, should_stop=should_stop)

        w.model_busy = True
        w.review_panel.set_retraining(True)
        w.review_panel.retrain_status.setText(f"retraining with {w.queue.counts()['reviewed']} verdicts…")
        w.jobs.slot("retrain").start(
            job, on_progress=lambda p: w.review_panel.retrain_progress.setValue(int(PROGRESS_STEPS * p.fraction)),
            on_result=self._retrained, on_error=lambda e: w.show_error("Retraining failed", e),
            on_cancel=lambda: w.review_panel.retrain_status.setText("retraining cancelled"),
            on_finish=self._retrain_finished)

    def _retrain_finished(self) -> None:
        self.w.model_busy = False
        self.w.review_panel.set_retraining(False)
        self.w.update_actions()

    def _retrained(self, outcome) -> None:
        if self._adopt("Retraining failed", self.s.adopt_retrain, outcome):
            self.w.retrained.emit()

    # -- projects ------------------------------------------------------------------------------------
    def open_project(self, path) -> None:
        from engine.project import Project

        w, s = self.w, self.s
        if w.guard("Cannot open the project", Project.load, path) is None:  # a damaged file: told at once
            return
        for name in ("train", "retrain", "load", "reference"):
            w.jobs.slot(name).cancel()
        w.status_label.setText(f"Opening {path}…")

        def job(progress, should_stop):
            with leave_a_core_for_the_gui():
                return s.read_project(path, progress=progress, should_stop=should_stop)

        def done(opened):
            if not self._adopt("Cannot open the project", s.adopt_project, opened):
                return
            w.train_panel.set_detector(s.detector, s.params)
            w.threshold_panel.loss_spin.setValue(s.costs[0])
            w.threshold_panel.review_spin.setValue(s.costs[1])
            s.mark_clean()
            w.file_opened(str(path))
            if s.scores is None:
                w.status_label.setText("Project opened (no model saved with it yet): train to score.")
                return
            w.tabs.setCurrentIndex(TAB_REVIEW)
            w.review_panel.select_row(0)
            w.status_label.setText(f"Project {Path(path).name} reopened.")
            w.scored.emit()

        w.jobs.slot("project").start(job, on_result=done,
                                     on_error=lambda e: w.show_error("Cannot open the project", e))

    # -- exports and model reuse ---------------------------------------------------------------------
    def export(self, path: str, title: str, author: str, notes: str) -> None:
        w, s = self.w, self.s
        if s.scores is None:
            return
        ctx = w.guard("Export failed", report_context, s, title, author, notes)
        if ctx is None:
            return

        def job(progress, should_stop):
            from engine.reports import build_report

            return build_report(path, None, ctx, progress=progress)

        def done(_result):
            w.status_label.setText(f"Exported {path}.")
            w.exported.emit(path)

        w.jobs.slot("export").start(job, on_result=done, on_error=lambda e: w.show_error("Export failed", e))

    def apply_model_to(self, path: str) -> None:
        w, s = self.w, self.s
        if s.model is None:
            return

        def job(progress, should_stop):
            return s.read_with_model(path, progress=progress)

        def done(outcome):
            from ui.dialogs import show_info

            w.jobs.slot("load").cancel()
            if not self._adopt("Cannot apply the model", s.adopt_applied, outcome):
                return
            w.file_opened(path)
            applied = outcome[1]
            lines = applied.differences.lines() or ["The file has exactly the model's columns and types."]
            w.tabs.setCurrentIndex(TAB_REVIEW)
            if applied.drift is not None and applied.drift.drifted:
                w.offer_training_on(path, applied.drift, lines)
            else:
                w.error_dialogs.append(show_info(w, "Model applied", "\n".join(lines)))
            w.model_applied.emit(applied.differences)

        w.jobs.slot("apply").start(job, on_result=done, on_error=lambda e: w.show_error("Cannot apply the model", e))


    def apply_model_on_cluster(self, path: str, cluster: str, top_n: int) -> None:
        """A file too big for this machine: score it with the model in force on the Dask cluster of the
        Settings (engine.scoring.cluster, as ``score --cluster``) into a Parquet scores file beside the
        app's data, take its ``top_n`` highest-scored records (engine.scoring.table.top_records) and
        apply the model to those in the window, so the queue holds them with scores and contributions."""
        w, s = self.w, self.s
        if s.model is None:
            return
        work = Path(w.data_dir) / "cluster"
        stem = Path(path).name.split(".")[0] or "file"
        threshold = s.threshold if s.threshold is not None and np.isfinite(s.threshold) else None

        def job(progress, should_stop):
            from engine.scoring.cluster import connect, describe, score_on_cluster
            from engine.scoring.table import top_records

            work.mkdir(parents=True, exist_ok=True)
            model_dir = s.model_dir
            if model_dir is None:  # workers receive the bundle's bytes, never a pickled model
                model_dir = str(work / "model")
                s.model.save(model_dir)
            out = work / f"{stem}.scores.parquet"
            progress(0.02, f"connecting to {cluster}")
            with connect(cluster) as client:
                where = describe(client)
                progress(0.05, f"scoring on {where}")
                summary = score_on_cluster(client, model_dir, path, out, threshold=threshold,
                                           progress=lambda f, m="", **k: progress(0.05 + 0.8 * f, m))
            progress(0.88, f"taking the top {top_n:,} records")
            subset = work / f"{stem}.top{top_n}.parquet"
            top_records(out, top_n).to_parquet(subset, index=False)
            outcome = s.read_with_model(str(subset))
            return outcome, summary, where, out

        def done(result):
            from ui.dialogs import show_info

            outcome, summary, where, out = result
            w.jobs.slot("load").cancel()
            if not self._adopt("Cannot apply the model", s.adopt_applied, outcome):
                return
            w.file_opened(str(outcome[0].loaded.path))
            shown = len(outcome[0].loaded.frame)
            text = (f"Scored {summary.rows:,} rows of {Path(path).name} on {where}: {summary.flagged:,} flagged. "
                    f"The queue holds the {shown:,} highest-scored records; every score is in {out}.")
            w.status_label.setText(text)
            w.error_dialogs.append(show_info(w, "Scored on the cluster", text))
            w.tabs.setCurrentIndex(TAB_REVIEW)
            w.model_applied.emit(outcome[1].differences)

        w.status_label.setText(f"Scoring {Path(path).name} on {cluster}…")
        w.jobs.slot("apply").start(job, on_progress=lambda p: p.message and w.status_label.setText(p.message),
                                   on_result=done, on_error=lambda e: w.show_error("Cluster scoring failed", e))


def report_context(s, title: str, author: str, notes: str):
    """What an export shows, read from the session: its scores, severity, shares and threshold in force."""
    from engine.reports import make_report_context

    model_metadata = None
    if s.model_dir:
        from engine.model_reuse import model_metadata as read_metadata

        model_metadata = read_metadata(s.model_dir, s.model)
    return make_report_context(s.frame, s.schema, s.score_result(), keys=[str(k) for k in s.keys],
                               verdicts=s.store.all() if s.store is not None else {}, threshold=s.threshold,
                               threshold_method=s.threshold_info.explanation,
                               model=None if model_metadata else s.model, model_metadata=model_metadata,
                               file=s.loaded.path, title=title, author=author, notes=notes, labels=s.labels,
                               skipped_rows=s.skipped_rows)
