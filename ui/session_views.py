"""The panels as views of the session: each session event re-renders what depends on it.

No engine workflow here: the numbers shown (scores, severity, threshold, shares, verdicts) are read
from ``engine.session.Session``; this module only puts them into the widgets, so every view shows the
same score in force, the same severity and the same threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt

from engine.schema import Role
from ui.detail_panel import RecordView, WhatIf
from ui.queue_model import VERDICTS
from ui.widgets import PROGRESS_STEPS, counted

APP_NAME = "Anomaly Desk"


class SessionViews(QObject):
    """Renders ``window.session`` into the window's panels (connected to the session's events)."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self.prepared = None  # (frame, QueueModel.column_arrays(frame)) made by the load worker

    @property
    def s(self):
        return self.w.session

    def connect(self, session) -> None:
        for name, slot in (("file", self.file_changed), ("reference", self.reference_changed),
                           ("scores", self.scores_changed), ("threshold", self.threshold_changed),
                           ("dirty", self.update_title)):
            session.events.connect(name, slot)

    # -- the file ----------------------------------------------------------------------------------
    def file_changed(self) -> None:
        """A new file: every view that showed the previous one starts empty."""
        w, s = self.w, self.s
        frame = s.frame
        columns = self.prepared[1] if self.prepared is not None and self.prepared[0] is frame else None
        self.prepared = None
        w.queue.set_frame(frame, columns=columns)
        problems = list(getattr(s.loaded, "problems", []) or []) + list(s.schema.problems or [])
        w.data_panel.set_file(s.loaded.path, len(frame), getattr(s.loaded, "encoding", "utf-8"),
                              getattr(s.loaded, "delimiter", ","))
        w.data_panel.set_schema(s.inferred, s.overrides, problems)
        self.reference_changed()
        w.train_panel.reset()
        w.review_panel.retrain_status.setText("")
        w.review_panel.retrain_progress.setValue(0)
        w.threshold_panel.set_scores(np.zeros(0))
        w.threshold_panel.show_threshold(None, "default", "Train a model to see its scores.")
        w.threshold_panel.show_suggestion(None)
        w.error_plot.set_data(np.zeros(0))
        w.detail_panel.set_scores(np.zeros(0), None)
        w.detail_panel.show_record(None)
        self.show_all_verdicts()
        if s.store is not None:
            w.review_panel.set_reasons(s.store.reasons())
        w.review_panel.clear_filters()
        w.review_panel.sort(0, Qt.SortOrder.DescendingOrder)
        if s.orphans:
            w.status_label.setText(f"{len(s.orphans)} stored verdict(s) match no record of this file "
                                   "(kept in the database).")
        self.update_title()
        w.update_actions()

    def reference_changed(self) -> None:
        ref = self.s.reference_file
        self.w.data_panel.set_reference(ref.path if ref is not None else None,
                                        len(ref.frame) if ref is not None else None)
        self.w.train_panel.set_reference_available(Path(ref.path).name if ref is not None else None)

    def update_title(self) -> None:
        s = self.s
        if s.loaded is None:
            self.w.setWindowTitle(APP_NAME)
            return
        project = f" · {s.project_path.name}" if s.project_path is not None else ""
        self.w.setWindowTitle(f"{'*' if s.dirty else ''}{Path(s.loaded.path).name}{project} · {APP_NAME}")

    # -- scores and threshold ----------------------------------------------------------------------
    def scores_changed(self) -> None:
        w, s = self.w, self.s
        record = w.review_panel.current_record()
        order = s.score_order if s.score_order is not None else np.argsort(s.scores, kind="stable")
        w.queue.set_scores(s.scores, s.severity, order)
        if record >= 0:
            w.review_panel.select_record(record)
        w.threshold_panel.set_scores(s.scores, None if s.retrained else s.reference_scores)
        x, x_label = self.time_axis()
        w.error_plot.set_data(s.scores, x, x_label)
        w.detail_panel.set_scores(s.scores, None)
        self.update_labels()
        self.show_retrain()
        w.update_actions()

    def threshold_changed(self) -> None:
        w, s = self.w, self.s
        if s.threshold_info is None:
            return
        rule = s.threshold_rule
        w.threshold_panel.show_threshold(s.threshold, rule.method, s.threshold_info.explanation, rule.params,
                                         s.cut if isinstance(s.cut, np.ndarray) else None)
        sug = s.suggestion
        if sug is None:
            w.threshold_panel.show_suggestion(None)
        else:
            n = int((s.scores >= sug.threshold.value).sum())
            w.threshold_panel.show_suggestion(f"{sug.rule.describe()}, threshold {sug.threshold.value:.4g}, flags "
                                              f"{n:,} (now {int(s.flagged.sum()):,}).", sug.threshold.explanation)
        w.queue.set_threshold(s.cut)
        w.error_plot.set_threshold(s.threshold, s.cut if isinstance(s.cut, np.ndarray) else None)
        w.detail_panel.histogram.set_threshold(s.threshold)
        w.review_panel._update_counter()
        self.show_retrain()
        self.show_record(w.review_panel.current_record())

    def show_retrain(self) -> None:
        r = self.s.last_retrain
        text = "" if r is None else (
            f"retrained with {counted(r.n_anomalies, 'anomaly', 'anomalies')} and {counted(r.n_normals, 'normal')}"
            f" in {r.seconds:.1f} s · flagged {r.flagged_before:,} → {r.flagged_after:,}"
            + (f" · the verdicts favour {self.s.favoured}" if self.s.favoured else "")
            + (" · a threshold from the verdicts is suggested on the Threshold screen" if self.s.suggestion else ""))
        self.w.review_panel.retrain_status.setText(text)
        if r is not None:
            self.w.review_panel.retrain_progress.setValue(PROGRESS_STEPS)

    def time_axis(self) -> tuple[np.ndarray | None, str]:
        import pandas as pd

        s = self.s
        if s.schema is None or s.loaded is None:
            return None, "position in file"
        for name in s.schema.by_role(Role.DATETIME):
            t = pd.to_datetime(s.frame[name], errors="coerce")
            if t.notna().mean() > 0.9:
                secs = (t - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=float)
                return np.nan_to_num(secs, nan=np.nanmin(secs)), f"{name} (seconds since 1970)"
        return None, "position in file"

    # -- verdicts and labels -----------------------------------------------------------------------
    def show_all_verdicts(self) -> None:
        matched = self.s.verdict_records_by_row()
        self.w.queue.set_all_verdicts({i: r.verdict for i, r in matched.items() if r.verdict},
                                      {i: r.note for i, r in matched.items() if r.note},
                                      {i: r.user or "" for i, r in matched.items() if r.verdict},
                                      {i: r.reason for i, r in matched.items() if r.reason})
        self.update_labels()

    def show_verdict_of(self, record: int) -> None:
        """One record's verdict and note, read back from the session (what was stored)."""
        rec = self.s.record(str(self.s.keys[record]))
        self.w.queue.set_verdict(record, (rec.verdict or "") if rec else "", rec.note if rec else "",
                                 user=(rec.user or "") if rec else "", reason=(rec.reason or "") if rec else "")

    def update_labels(self) -> None:
        """Ground truth for the threshold figures: the label column, else the verdicts given."""
        w, s = self.w, self.s
        if s.labels is not None:
            w.threshold_panel.set_labels(s.labels, None, f"the label column '{s.schema.label_column}'")
        else:
            reviewed = np.flatnonzero((w.queue.verdicts == 1) | (w.queue.verdicts == 2))
            if len(reviewed):
                w.threshold_panel.set_labels(w.queue.verdicts[reviewed] == 1, reviewed, "the analyst's verdicts")
            else:
                w.threshold_panel.set_labels(None, None, "")
        if s.scores is not None:
            w.error_plot.set_marks(s.labels, w.queue.verdicts)

    # -- the selected record -----------------------------------------------------------------------
    def record_view(self, record: int) -> RecordView | None:
        s = self.s
        if record < 0 or s.result is None or s.loaded is None:
            return None
        r, frame = s.result, s.frame
        columns = s.contribution_columns
        values = [frame[c].iat[record] if c in frame.columns else None for c in columns]
        expected = None
        if r.expected is not None:
            expected = [r.expected[c].iat[record] if c in r.expected.columns else None for c in columns]
        numeric = [s.schema.column(c).role is Role.NUMERIC if c in s.schema.names else False for c in columns]
        rec = s.record(str(s.keys[record]))
        flagged = s.flagged  # above the threshold and covered by no rule
        return RecordView(record=record, key=str(s.keys[record]), score=float(s.scores[record]),
                          severity=float(s.severity[record]), flagged=bool(flagged is not None and flagged[record]),
                          columns=columns, values=values, expected=expected,
                          shares=np.asarray(s.contributions[record]), numeric=numeric,
                          verdict=VERDICTS[int(self.w.queue.verdicts[record])], note=rec.note if rec else "")

    def show_record(self, record: int) -> None:
        w = self.w
        w.detail_panel.show_record(self.record_view(record))
        if record >= 0 and self.s.scores is not None:
            w.error_plot.select(record)
        key = str(self.s.keys[record]) if record >= 0 and self.s.keys is not None else None
        rec = self.s.record(key) if key is not None else None
        w.review_panel.show_reason((rec.reason if rec and rec.reason else self.s.pending_reason(key))
                                   if key is not None else "")

    def what_if(self, record: int, changes: dict) -> WhatIf:
        """The what-if, scored by the session's model in force (refused by it after a retrain)."""
        if self.w.model_busy:
            from engine.errors import AnomalyDeskError

            raise AnomalyDeskError("the model is being trained: try the what-if when it is done")
        res = self.s.what_if(record, changes)
        expected = None
        if res.expected is not None:
            expected = [res.expected[c].iat[1] if c in res.expected.columns else None for c in res.columns]
        return WhatIf(score=float(res.scores[1]), severity=float(res.severity[1]),
                      shares=np.asarray(res.contributions[1]), expected=expected,
                      before_score=float(res.scores[0]), before_severity=float(res.severity[0]))
