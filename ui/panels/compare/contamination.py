"""Compare page 3: the contamination study, AUCROC when known anomalies are mixed into training."""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QWidget

from engine.errors import AnomalyDeskError
from ui.panels.compare.common import CompareData, curve_plot, hbox, note, vbox
from ui.widgets import PROGRESS_STEPS, job_controls

DEFAULT_SHARES_TEXT = "0, 5, 10, 30, 50"


def parse_shares(text: str) -> list[float]:
    """Percentages such as "0, 5, 10%" as shares (0.0, 0.05, 0.1); a clear error for anything else."""
    out = []
    for part in text.replace(";", ",").split(","):
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


class ContaminationPage(QWidget):
    done = Signal()
    error = Signal(str, object)  # title, JobError

    def __init__(self, detectors: list[str], data_or_say: Callable[[QLabel], CompareData | None], parent=None):
        super().__init__(parent)
        self.data_or_say = data_or_say
        self.slot = None  # ui.workers.JobSlot "contamination", set by the panel's attach()
        self.study = None  # engine.compare.ContaminationStudy
        self.study_detector = QComboBox()
        self.study_detector.setObjectName("studyDetector")
        self.study_detector.addItems(detectors)
        if "autoencoder" in detectors:
            self.study_detector.setCurrentText("autoencoder")
        self.shares_edit = QLineEdit(DEFAULT_SHARES_TEXT)
        self.shares_edit.setObjectName("studyShares")
        self.shares_edit.setToolTip("percentages of known anomalies among the training rows")
        self.study_button, self.study_cancel, self.study_progress = job_controls(
            "Run study", self.run, self.cancel, name="study")
        self.study_status = note("How much do anomalies in the training data hurt? The study retrains with a "
                                 "share of known anomalies mixed in and measures AUCROC on held-out rows.", "studyStatus")
        self.study_plot = curve_plot("AUCROC against contamination of the training rows",
                                     "anomalies in the training rows (%)", "AUCROC", "studyPlot")
        si = self.study_plot.getPlotItem()
        si.plot([0, 100], [0.5, 0.5], pen=pg.mkPen((170, 170, 170), style=Qt.PenStyle.DashLine))
        self.study_curve = si.plot([], [], pen=pg.mkPen((40, 90, 170), width=2), symbol="o", symbolSize=8,
                                   symbolBrush=(40, 90, 170))
        vbox(self, hbox("Detector:", self.study_detector, "Anomalies in training (%):", (self.shares_edit, 1),
                        self.study_button, self.study_cancel, self.study_progress),
             self.study_status, (self.study_plot, 1))

    def shares(self) -> list[float]:
        return parse_shares(self.shares_edit.text())

    def run(self) -> None:
        data = self.data_or_say(self.study_status)
        if data is None or self.slot is None:
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
        self.slot.start(job, on_progress=lambda p: self.study_progress.setValue(int(PROGRESS_STEPS * p.fraction)),
                        on_result=self._studied, on_error=self._failed,
                        on_cancel=lambda: self.study_status.setText("Study cancelled."), on_finish=self._finished)

    def cancel(self) -> None:
        if self.slot is not None:
            self.slot.request_stop()

    def clear(self) -> None:
        if self.slot is not None:
            self.slot.cancel()
        self._finished()
        self.study = None
        self.study_curve.setData([], [])
        self.study_progress.setValue(0)

    def _failed(self, error) -> None:
        self.study_status.setText(f"Study failed: {error.exception}")
        self.error.emit("Contamination study failed", error)

    def _finished(self) -> None:
        self.study_button.setEnabled(True)
        self.study_cancel.setEnabled(False)

    def _studied(self, study) -> None:
        self._finished()
        self.study = study
        self.study_progress.setValue(PROGRESS_STEPS)
        done = [p for p in study.points if p.aucroc is not None]
        self.study_curve.setData([100 * p.share for p in done], [p.aucroc for p in done])
        figures = ", ".join(f"{100 * p.share:g}%: {p.aucroc:.3f}" for p in done)
        self.study_status.setText(f"{study.detector}, {study.train_rows:,} training rows at every level; AUCROC "
                                  f"on {study.eval_rows:,} held-out rows: {figures}. " + " ".join(study.notes))
        self.done.emit()
