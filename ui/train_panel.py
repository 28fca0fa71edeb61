"""The Train screen: detector, its settings, and the live view of a training job."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.detectors.params import DEVICE
from ui.detector_form import DetectorForm, detector_names
from ui.plots import LossPlot
from ui.widgets import PROGRESS_STEPS, ScrollSafeComboBox, ScrollSafeSpinBox, job_controls
from ui.workers import Progress

DESCRIPTIONS = {
    "auto": "Chooses for you from the data (recommended to start).",
    "autoencoder": "Learns to rebuild normal rows; rows it rebuilds badly are anomalous. "
                   "Shows what each value should have been.",
    "vae": "A probabilistic autoencoder: smoother notion of normal, slower to train.",
    "iforest": "Isolation forest: fast, robust, a good default for mixed data.",
    "ocsvm": "One-class SVM: tight boundary around normal rows; fits on a sample.",
    "pca": "Principal components: fast, finds rows off the main linear structure.",
    "ecod": "Empirical tail probabilities per column: no settings, explains per column.",
    "knn": "Distance to the nearest rows: finds rows in empty space between groups of normal rows.",
    "lof": "Local outlier factor: how much sparser a row's neighbourhood is than its neighbours'.",
}


def format_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class TrainPanel(QWidget):
    train_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.detector_combo = ScrollSafeComboBox()
        self.detector_combo.setObjectName("detectorCombo")
        self.detector_combo.addItems(detector_names())
        self.detector_combo.currentTextChanged.connect(self._detector_changed)
        self.detector_combo.setToolTip("the method that learns what normal looks like (auto: chosen from the data)")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.form = DetectorForm()
        self.device_combo = ScrollSafeComboBox()
        self.device_combo.setObjectName("deviceCombo")
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        self.device_combo.setToolTip(DEVICE.help)
        self.sample_spin = ScrollSafeSpinBox()
        self.sample_spin.setObjectName("sampleSpin")
        self.sample_spin.setRange(0, 100_000_000)
        self.sample_spin.setSingleStep(10_000)
        self.sample_spin.setSpecialValueText("all rows")
        self.sample_spin.setToolTip("learn from a random sample of this many rows (every row is still scored)")
        self.source_combo = ScrollSafeComboBox()
        self.source_combo.setObjectName("sourceCombo")
        self.source_combo.addItems(["this file"])
        self.source_combo.setToolTip("the rows the model learns normal from: this file (possibly with anomalies "
                                     "in it) or a reference file of known-good records")

        general = QFormLayout()
        general.addRow("Detector", self.detector_combo)
        general.addRow("", self.description)
        general.addRow("Learn normal from", self.source_combo)
        general.addRow("Training rows", self.sample_spin)
        general.addRow("Device", self.device_combo)
        settings_box = QGroupBox("Settings")
        sb = QVBoxLayout(settings_box)
        sb.addWidget(self.form)
        sb.addStretch(1)

        self.train_button, self.cancel_button, self.progress = job_controls(
            "Train and score", self.train_requested, self.cancel_requested, name="train")
        self.train_button.setDefault(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addLayout(general)
        ll.addWidget(settings_box, 1)
        ll.addLayout(buttons)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(340)

        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.status = QLabel("Not trained yet.")
        self.status.setObjectName("trainStatus")
        self.status.setWordWrap(True)
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("trainEta")
        self.eta_label.setVisible(False)  # shown only while a training runs
        self._running = False
        self.speed_label = QLabel("– rows/s")
        self.device_label = QLabel("device –")
        self.epoch_label = QLabel("")
        for w in (self.eta_label, self.speed_label, self.device_label, self.epoch_label):
            w.setMinimumWidth(110)
        stats = QHBoxLayout()
        for w in (self.eta_label, self.speed_label, self.device_label, self.epoch_label):
            stats.addWidget(w)
        stats.addStretch(1)
        self.loss_plot = LossPlot()
        self.loss_plot.setObjectName("lossPlot")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self.progress)
        rl.addWidget(self.status)
        rl.addLayout(stats)
        rl.addWidget(self.loss_plot, 1)

        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(right, 1)
        self._detector_changed(self.detector_combo.currentText())

    def _detector_changed(self, name: str) -> None:
        self.description.setText(DESCRIPTIONS.get(name, ""))
        self.form.set_detector(name)

    # -- what the window reads -------------------------------------------------------------------
    def detector(self) -> str:
        return self.detector_combo.currentText()

    def params(self) -> dict:
        return self.form.values()

    def device(self) -> str:
        return self.device_combo.currentText()

    def sample_rows(self) -> int:
        return self.sample_spin.value()

    def use_reference(self) -> bool:
        return self.source_combo.currentIndex() == 1

    def set_reference_available(self, name: str | None) -> None:
        while self.source_combo.count() > 1:
            self.source_combo.removeItem(1)
        if name:
            self.source_combo.addItem(f"reference file {name}")
            self.source_combo.setCurrentIndex(1)

    def set_detector(self, name: str, params: dict | None = None) -> None:
        self.detector_combo.setCurrentText(name)
        self.form.set_detector(name, params or {})

    # -- job view --------------------------------------------------------------------------------
    def reset(self, status: str = "Not trained yet.", eta: str = "") -> None:
        """Another file (or a new run): the previous training status, progress and loss curve go."""
        self.progress.setValue(0)
        self.loss_plot.set_history(())
        self.status.setText(status)
        self.eta_label.setText(eta)
        self.speed_label.setText("– rows/s")
        self.epoch_label.setText("")

    def set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.detector_combo.setEnabled(not running)
        self.form.setEnabled(not running)
        self._running = running
        # an ETA only means something while a job runs: after a cancel or the end it would mislead
        self.eta_label.setVisible(running)
        if not running:
            self.eta_label.setText("")
        if running:
            self.reset("Starting…", "ETA –")

    def cancelling(self) -> None:
        """Cancel pressed: the job stops at its next batch; no ETA from here on."""
        self._running = False
        self.status.setText("Cancelling…")
        self.eta_label.setText("")
        self.eta_label.setVisible(False)

    def show_progress(self, p: Progress) -> None:
        if not self._running:
            return  # a report queued before the cancel: the job is stopping
        self.progress.setValue(int(PROGRESS_STEPS * max(0.0, min(1.0, p.fraction))))
        if p.message:
            self.status.setText(p.message)
        self.eta_label.setText(f"ETA {format_seconds(p.eta_s)}")
        m = p.metrics
        if m.get("rows_per_s"):
            self.speed_label.setText(f"{float(m['rows_per_s']):,.0f} rows/s")
        if m.get("device"):
            self.device_label.setText(f"device {m['device']}")
        if m.get("epoch") is not None:
            total = m.get("epochs")
            self.epoch_label.setText(f"epoch {m['epoch']}" + (f"/{total}" if total else ""))
        if p.loss_history:
            self.loss_plot.set_history(p.loss_history)
