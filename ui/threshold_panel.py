"""The Threshold screen: histogram with a draggable line, ways to set it, live quality figures when
labels or verdicts exist, a sliding-window option and the money view."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import thresholds
from ui.plots import CurvePlot, ThresholdHistogram

# the rules the Method box offers, named and described in one place (engine.thresholds.METHODS)
METHODS = [(key, thresholds.METHODS[key]) for key in
           ("default", "percentile", "target_fpr", "automatic", "best_f1", "cost", "manual")]
LIVE_METRICS_MAX_ROWS = 300_000  # above this, figures update when the drag ends, not during it


class ThresholdPanel(QWidget):
    """A view of the session's threshold: it shows the rule in force and sends the analyst's choices
    (a rule, a dragged value, the sliding window, the money figures) to the session."""

    rule_requested = Signal(str, dict)  # method (engine.thresholds.METHODS), its parameters
    dynamic_requested = Signal(object)  # (window, percentile), or None to turn the sliding window off
    costs_changed = Signal(float, float)  # cost of a missed anomaly, cost of a review
    suggestion_applied = Signal()
    error = Signal(object)  # an engine error while setting the threshold: the window shows it
    curves_ready = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scores = np.zeros(0)
        self.reference_scores: np.ndarray | None = None
        self.labels: np.ndarray | None = None  # bool per labelled record (True = anomaly)
        self.label_index: np.ndarray | None = None  # which records carry labels (verdicts: a subset)
        self.label_source = ""
        self.value: float = np.inf
        self.method = "percentile"
        self.dynamic: np.ndarray | None = None
        self.metrics: dict | None = None
        self._curves: dict | None = None
        self._curves_dirty = True
        self._curves_token = 0
        self.job_slot = None  # ui.workers.JobSlot for the curves, set by the window

        self.histogram = ThresholdHistogram()
        self.histogram.setObjectName("thresholdHistogram")
        self.histogram.threshold_dragged.connect(self._dragging)
        self.histogram.threshold_moved.connect(self._drag_finished)

        self.method_combo = QComboBox()
        self.method_combo.setObjectName("thresholdMethod")
        for key, text in METHODS:
            self.method_combo.addItem(text, key)
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.param_spin = QDoubleSpinBox()
        self.param_spin.setObjectName("thresholdParameter")
        self.param_spin.setDecimals(3)
        self.param_spin.setRange(0.001, 50.0)
        self.param_spin.setValue(1.0)
        self.param_spin.setSuffix(" %")
        self.apply_button = QPushButton("Set threshold")
        self.apply_button.setObjectName("applyThreshold")
        self.apply_button.clicked.connect(self._apply_clicked)
        self.explanation = QLabel("Train a model to see its scores.")
        self.explanation.setObjectName("thresholdExplanation")
        self.explanation.setWordWrap(True)
        self.suggestion_label = QLabel("")
        self.suggestion_label.setObjectName("thresholdSuggestion")
        self.suggestion_label.setWordWrap(True)
        self.suggestion_button = QPushButton("Apply the suggestion")
        self.suggestion_button.setObjectName("applySuggestion")
        self.suggestion_button.clicked.connect(self.suggestion_applied)
        self.show_suggestion(None)

        self.dynamic_check = QCheckBox("Sliding-window threshold (time-ordered file)")
        self.dynamic_check.setObjectName("dynamicThreshold")
        self.window_spin = QSpinBox()
        self.window_spin.setObjectName("dynamicWindow")
        self.window_spin.setRange(10, 10_000_000)
        self.window_spin.setValue(1000)
        self.window_spin.setSuffix(" records")
        self.dyn_pct = QDoubleSpinBox()
        self.dyn_pct.setRange(50.0, 99.999)
        self.dyn_pct.setDecimals(2)
        self.dyn_pct.setValue(99.0)
        self.dyn_pct.setSuffix(" th percentile")
        self.dynamic_check.toggled.connect(self._dynamic_changed)
        self.window_spin.editingFinished.connect(self._dynamic_changed)
        self.dyn_pct.editingFinished.connect(self._dynamic_changed)

        how = QGroupBox("How the threshold is set")
        # wrapped labels sit in a box layout, not a form row: a form row gave them one line too few
        hv = QVBoxLayout(how)
        hl = QFormLayout()
        hl.addRow("Method", self.method_combo)
        row = QHBoxLayout()
        row.addWidget(self.param_spin)
        row.addWidget(self.apply_button)
        hl.addRow("Share / rate", row)
        hv.addLayout(hl)
        hv.addWidget(self.explanation)
        hv.addWidget(self.suggestion_label)
        suggestion = QHBoxLayout()
        suggestion.addStretch(1)
        suggestion.addWidget(self.suggestion_button)
        hv.addLayout(suggestion)
        hv.addWidget(self.dynamic_check)
        dl = QFormLayout()
        dyn = QHBoxLayout()
        dyn.addWidget(self.window_spin)
        dyn.addWidget(self.dyn_pct)
        dl.addRow("Window", dyn)
        hv.addLayout(dl)

        # quality figures
        self.source_label = QLabel("No labels or verdicts yet: figures appear once there are some.")
        self.source_label.setObjectName("labelSource")
        self.source_label.setWordWrap(True)
        self.precision_label = QLabel("–")
        self.precision_label.setObjectName("precisionLabel")
        self.recall_label = QLabel("–")
        self.recall_label.setObjectName("recallLabel")
        self.f1_label = QLabel("–")
        self.f1_label.setObjectName("f1Label")
        self.auc_label = QLabel("–")
        self.confusion = QTableWidget(2, 2)
        self.confusion.setObjectName("confusionMatrix")
        self.confusion.setHorizontalHeaderLabels(["flagged: no", "flagged: yes"])
        self.confusion.setVerticalHeaderLabels(["truly normal", "truly anomaly"])
        self.confusion.setMaximumHeight(90)
        self.confusion.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        quality = QGroupBox("At this threshold")
        ql = QGridLayout(quality)
        ql.addWidget(self.source_label, 0, 0, 1, 4)
        for col, (name, w) in enumerate((("Precision", self.precision_label), ("Recall", self.recall_label),
                                         ("F1", self.f1_label), ("AUC ROC / PR", self.auc_label))):
            title = QLabel(name)
            title.setStyleSheet("color:#555")
            ql.addWidget(title, 1, col)
            w.setStyleSheet("font-size:15pt; font-weight:bold")
            ql.addWidget(w, 2, col)
        ql.addWidget(self.confusion, 3, 0, 1, 4)

        self.roc = CurvePlot("ROC", "false-positive rate", "true-positive rate", diagonal=True)
        self.roc.setObjectName("rocPlot")
        self.pr = CurvePlot("precision-recall", "recall", "precision", diagonal=False)
        self.pr.setObjectName("prPlot")

        # money
        self.loss_spin = _money_spin("lossPerMiss", 1e12, 5000.0)
        self.review_spin = _money_spin("costPerReview", 1e9, 25.0)
        self.money_label = QLabel("–")
        self.money_label.setObjectName("moneyLabel")
        self.money_label.setWordWrap(True)
        self.loss_spin.valueChanged.connect(self._costs_changed)
        self.review_spin.valueChanged.connect(self._costs_changed)
        money = QGroupBox("Financial impact")
        ml = QFormLayout(money)
        ml.addRow("Average loss of a missed anomaly", self.loss_spin)
        ml.addRow("Cost of reviewing one record", self.review_spin)
        ml.addRow(self.money_label)

        left = QVBoxLayout()
        left.addWidget(self.histogram, 3)
        curves = QHBoxLayout()
        curves.addWidget(self.roc)
        curves.addWidget(self.pr)
        left.addLayout(curves, 2)
        right = QVBoxLayout()
        right.addWidget(how)
        right.addWidget(quality)
        right.addWidget(money)
        right.addStretch(1)
        rw = QWidget()
        rw.setLayout(right)
        rw.setMaximumWidth(470)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(rw)

        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(40)
        self._live_timer.timeout.connect(self._update_figures)
        self._pending_value = np.inf
        self._method_changed()

    # -- inputs ----------------------------------------------------------------------------------
    def set_scores(self, scores: np.ndarray, reference_scores: np.ndarray | None = None) -> None:
        self.scores = np.asarray(scores, dtype=float)
        self.reference_scores = reference_scores
        self.histogram.set_scores(self.scores)
        self._curves_dirty = True

    def set_labels(self, labels: np.ndarray | None, index: np.ndarray | None, source: str) -> None:
        """``labels`` True = anomaly, for the records ``index`` (None = every record)."""
        self.labels = None if labels is None else np.asarray(labels, dtype=bool)
        self.label_index = index
        self.label_source = source
        self._curves_dirty = True
        self._update_figures()

    # -- setting the threshold -------------------------------------------------------------------
    def _method_changed(self) -> None:
        key = self.method_combo.currentData()
        self.param_spin.setEnabled(key in ("percentile", "target_fpr"))
        if key == "target_fpr":
            self.param_spin.setToolTip("share of normal records allowed above the threshold")
        else:
            self.param_spin.setToolTip("share of records flagged (expected contamination)")

    def _apply_clicked(self) -> None:
        self.apply_method()

    def rule_params(self, key: str) -> dict:
        """The parameters of the rule ``key`` as the panel's fields set them (shares as fractions)."""
        share = self.param_spin.value() / 100.0
        if key == "percentile":
            return {"share": min(share, 0.5)}
        if key == "target_fpr":
            return {"fpr": share}
        if key == "manual":
            return {"value": float(self.value)}
        return {}

    def apply_method(self) -> None:
        """Ask for the rule chosen in the Method box (the session computes it: engine.thresholds)."""
        if len(self.scores) == 0:
            return
        key = self.method_combo.currentData()
        self.rule_requested.emit(key, self.rule_params(key))

    def show_threshold(self, value: float | None, method: str, explanation: str, params: dict | None = None,
                       dynamic: np.ndarray | None = None) -> None:
        """Render the threshold in force: its value, the rule (the Method box shows it) and why."""
        self.value = float(value) if value is not None else np.inf
        self.method = method
        self.dynamic = dynamic
        i = self.method_combo.findData(method)
        if i >= 0:
            self.method_combo.blockSignals(True)
            self.method_combo.setCurrentIndex(i)
            self.method_combo.blockSignals(False)
            self._method_changed()
        params = params or {}
        share = params.get("share", params.get("fpr"))
        if share is not None:
            self.param_spin.setValue(100.0 * float(share))
        self.dynamic_check.blockSignals(True)
        self.dynamic_check.setChecked(dynamic is not None)
        self.dynamic_check.blockSignals(False)
        if np.isfinite(self.value):
            self.histogram.set_threshold(self.value)
        self.explanation.setText(explanation)
        self._update_figures()

    def show_suggestion(self, text: str | None, details: str = "") -> None:
        """A rule the verdicts suggest after a retrain: offered with an Apply button, never imposed."""
        self.suggestion_label.setText(f"<b>Suggested</b> from the verdicts: {text}" if text else "")
        self.suggestion_label.setToolTip(details)
        self.suggestion_label.setVisible(bool(text))
        self.suggestion_button.setVisible(bool(text))

    def set_threshold(self, value: float, method: str = "manual", explanation: str | None = None) -> None:
        """Set the value by hand (what a drag does): sent to the session as a manual rule."""
        self.rule_requested.emit("manual", {"value": float(value)})

    def _dragging(self, value: float) -> None:
        self._pending_value = value
        if len(self.scores) <= LIVE_METRICS_MAX_ROWS:
            self.value = value
            self._live_timer.start()

    def _drag_finished(self, value: float) -> None:
        self._live_timer.stop()
        self.rule_requested.emit("manual", {"value": float(value)})

    def _dynamic_changed(self) -> None:
        on = self.dynamic_check.isChecked()
        self.dynamic_requested.emit((self.window_spin.value(), self.dyn_pct.value()) if on else None)

    def _costs_changed(self) -> None:
        self.costs_changed.emit(self.loss_spin.value(), self.review_spin.value())
        self._update_money()

    def current_cut(self) -> float | np.ndarray:
        return self.dynamic if self.dynamic is not None else self.value

    # -- figures ---------------------------------------------------------------------------------
    def _labelled(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self.labels is None or len(self.scores) == 0:
            return self.scores, None
        s = self.scores if self.label_index is None else self.scores[self.label_index]
        if len(s) != len(self.labels) or self.labels.all() or not self.labels.any():
            return s, None
        return s, self.labels

    def _update_figures(self) -> None:
        if len(self.scores) == 0:
            return
        s, y = self._labelled()
        cut = self.current_cut()
        if isinstance(cut, np.ndarray) and self.label_index is not None:
            cut = cut[self.label_index]
        if y is None:
            self.source_label.setText(self.label_source + ("" if self.label_source else
                                      "No labels or verdicts of both kinds yet: figures appear once there "
                                      "are some."))
            for w in (self.precision_label, self.recall_label, self.f1_label, self.auc_label):
                w.setText("–")
            self.metrics = None
            self.roc.set_curve(None, None)
            self.pr.set_curve(None, None)
            self.roc.set_point(None, None)
            self.pr.set_point(None, None)
            self._fill_confusion(None)
            self._update_money()
            return
        if self._curves_dirty:
            self._compute_curves(s, y, cut)
        m = thresholds.metrics_at_threshold(s, y, cut, curves=False)
        curves = self._curves or {}
        self.metrics = {**m, **{k: curves.get(k) for k in ("aucroc", "aucpr", "roc", "pr")}}
        m = self.metrics
        self.source_label.setText(f"Measured against {self.label_source} ({len(y):,} records, "
                                  f"{int(y.sum()):,} anomalies).")
        self.precision_label.setText(f"{m['precision']:.3f}")
        self.recall_label.setText(f"{m['recall']:.3f}")
        self.f1_label.setText(f"{m['f1']:.3f}")
        self._show_auc()
        self.roc.set_point(m["fpr"], m["recall"])
        self.pr.set_point(m["recall"], m["precision"] if m["flagged"] else None)
        self._fill_confusion(m)
        self._update_money()

    def _compute_curves(self, s: np.ndarray, y: np.ndarray, cut) -> None:
        """ROC/PR curves and AUCs do not depend on the threshold: computed once per scores/labels
        change, in a worker when the window gave one (seconds at a million rows)."""
        self._curves_dirty = False
        self._curves = None
        self._curves_token += 1
        token = self._curves_token
        self.roc.set_curve(None, None)
        self.pr.set_curve(None, None)

        def done(curves: dict) -> None:
            if token != self._curves_token:
                return  # scores or labels changed meanwhile
            self._curves = curves
            if curves.get("roc") is not None:
                self.roc.set_curve(curves["roc"]["fpr"], curves["roc"]["tpr"])
                self.pr.set_curve(curves["pr"]["recall"], curves["pr"]["precision"])
            if self.metrics is not None:
                self.metrics.update({k: curves.get(k) for k in ("aucroc", "aucpr", "roc", "pr")})
                self._show_auc()
            self.curves_ready.emit()

        if self.job_slot is None:
            done(thresholds.metrics_at_threshold(s, y, cut))
            return
        s, y = s.copy(), y.copy()
        self.job_slot.start(lambda progress, should_stop: thresholds.metrics_at_threshold(s, y, cut),
                            on_result=done, on_error=lambda e: self.error.emit(e.exception))

    def _show_auc(self) -> None:
        m = self.metrics or {}
        self.auc_label.setText(f"{m['aucroc']:.3f} / {m['aucpr']:.3f}" if m.get("aucroc") is not None else "…")

    def _fill_confusion(self, m: dict | None) -> None:
        cells = [[m["tn"], m["fp"]], [m["fn"], m["tp"]]] if m else [["", ""], ["", ""]]
        for r in range(2):
            for c in range(2):
                item = QTableWidgetItem(f"{cells[r][c]:,}" if m else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.confusion.setItem(r, c, item)

    def _update_money(self) -> None:
        s, y = self._labelled()
        if y is None or len(self.scores) == 0:
            flagged = int((self.scores >= self.current_cut()).sum()) if len(self.scores) else 0
            self.money_label.setText(f"Reviewing the {flagged:,} flagged records costs "
                                     f"<b>${flagged * self.review_spin.value():,.0f}</b>. Money caught and "
                                     f"missed appear once there are labels or verdicts.")
            return
        cut = self.current_cut()
        if isinstance(cut, np.ndarray) and self.label_index is not None:
            cut = cut[self.label_index]
        f = thresholds.financial_impact(s, y, cut, avg_loss=self.loss_spin.value(),
                                        cost_per_review=self.review_spin.value(), metrics=self.metrics)
        self.money_label.setText(
            f"Money caught <b>${f['money_caught']:,.0f}</b> ({f['tp']:,} anomalies) · review cost "
            f"<b>${f['review_cost']:,.0f}</b> ({f['flagged']:,} reviews) · missed loss "
            f"<b>${f['missed_loss']:,.0f}</b> ({f['fn']:,} missed) · net <b>${f['net_benefit']:,.0f}</b>")


def _money_spin(name: str, top: float, value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setObjectName(name)
    spin.setRange(0, top)
    spin.setDecimals(2)
    spin.setValue(value)
    spin.setPrefix("$ ")
    return spin
