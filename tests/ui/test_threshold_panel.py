"""The Threshold screen: drag the line and watch precision/recall move; the ways to set it."""

import numpy as np
import pytest

from tests.ui.conftest import open_and_wait, train_and_wait


def drag_to(panel, value):
    """What a drag does: the line moves (sigDragged while moving) then is released."""
    line = panel.histogram.line
    line.setValue(value)
    line.sigDragged.emit(line)
    line.sigPositionChangeFinished.emit(line)


def test_moving_the_threshold_changes_precision_recall_and_the_queue(qtbot, trained_window):
    w = trained_window
    panel = w.threshold_panel
    assert "label column" in panel.source_label.text()
    s = np.sort(w.scores)
    drag_to(panel, float(s[-200]))
    high = (panel.metrics["precision"], panel.metrics["recall"], w.queue.counts()["flagged"])
    text_high = (panel.precision_label.text(), panel.recall_label.text())
    drag_to(panel, float(s[-1200]))
    low = (panel.metrics["precision"], panel.metrics["recall"], w.queue.counts()["flagged"])
    assert low[2] > high[2] == int((w.scores >= s[-200]).sum())
    assert low[1] >= high[1]  # a lower threshold never loses recall
    assert (panel.precision_label.text(), panel.recall_label.text()) != text_high
    assert panel.method == "manual"
    assert "Set by hand" in panel.explanation.text()
    # the confusion matrix agrees with the queue
    flagged = int(panel.confusion.item(0, 1).text().replace(",", "")) + \
        int(panel.confusion.item(1, 1).text().replace(",", ""))
    assert flagged == w.queue.counts()["flagged"]
    # ROC and PR curves drawn (computed in a worker), with the current point on them
    qtbot.waitUntil(lambda: panel._curves is not None, timeout=10_000)
    assert panel.metrics["aucroc"] is not None and "/" in panel.auc_label.text()
    assert len(panel.roc.curve.getData()[0]) > 2 and len(panel.pr.curve.getData()[0]) > 2
    assert len(panel.roc.point.getData()[0]) == 1
    # the error plot's threshold line follows
    assert w.error_plot.threshold_line.value() == pytest.approx(float(s[-1200]))


def test_percentile_target_fpr_automatic_best_f1_and_cost(qtbot, trained_window):
    w = trained_window
    panel = w.threshold_panel
    combo = panel.method_combo

    def use(method, share=None):
        combo.setCurrentIndex(combo.findData(method))
        if share is not None:
            panel.param_spin.setValue(share)
        panel.apply_button.click()
        return w.queue.counts()["flagged"]

    assert use("percentile", 2.0) == pytest.approx(30, abs=3)
    assert panel.method == "percentile"
    flagged_fpr = use("target_fpr", 1.0)
    assert panel.method == "target_fpr" and 0 < flagged_fpr < 1500
    use("automatic")
    assert panel.method == "automatic"
    assert "no contamination guess" in panel.explanation.text()
    use("best_f1")
    assert panel.method == "best_f1"
    best = panel.metrics["f1"]
    drag_to(panel, float(np.median(w.scores)))
    assert panel.metrics["f1"] <= best + 1e-9
    use("cost")
    assert panel.method == "cost"
    assert "$" in panel.money_label.text() and "missed loss" in panel.money_label.text()


def test_money_view_follows_the_figures(qtbot, trained_window):
    panel = trained_window.threshold_panel
    panel.loss_spin.setValue(1000.0)
    panel.review_spin.setValue(10.0)
    first = panel.money_label.text()
    panel.review_spin.setValue(20.0)
    assert panel.money_label.text() != first
    flagged = trained_window.queue.counts()["flagged"]
    assert f"${flagged * 20:,.0f}" in panel.money_label.text()


def test_sliding_window_threshold(qtbot, trained_window):
    w = trained_window
    panel = w.threshold_panel
    panel.window_spin.setValue(200)
    panel.dynamic_check.setChecked(True)
    assert panel.dynamic is not None and panel.dynamic.shape == (1500,)
    assert w.error_plot.dynamic_curve.isVisible() and not w.error_plot.threshold_line.isVisible()
    expected = int((w.scores >= panel.dynamic).sum())
    assert w.queue.counts()["flagged"] == expected
    panel.dynamic_check.setChecked(False)
    assert w.error_plot.threshold_line.isVisible()


def test_verdicts_stand_in_for_labels_when_the_file_has_none(qtbot, window, small_csv):
    from ui.data_panel import NO_LABEL

    open_and_wait(qtbot, window, small_csv)
    labels = window.labels.copy()
    panel = window.data_panel
    panel.label_combo.setCurrentText(NO_LABEL)
    panel.label_combo.activated.emit(panel.label_combo.currentIndex())
    train_and_wait(qtbot, window, "iforest", {"n_estimators": 30})
    tp = window.threshold_panel
    assert tp.metrics is None and tp.precision_label.text() == "–"
    window.review_panel.view.setFocus()
    window.review_panel.select_row(0)
    from PySide6.QtCore import Qt

    for _ in range(20):
        record = window.review_panel.current_record()
        qtbot.keyClick(window.review_panel.view, Qt.Key.Key_A if labels[record] else Qt.Key.Key_N)
    for record in np.flatnonzero(labels)[:3]:  # the analyst also finds a few anomalies further down
        window.select_record(int(record))
        qtbot.keyClick(window.review_panel.view, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: tp.metrics is not None, timeout=3000)
    assert "verdicts" in tp.source_label.text()
    assert tp.precision_label.text() != "–"


def test_an_impossible_method_shows_a_dialog(qtbot, window, small_csv):
    from ui.data_panel import NO_LABEL

    open_and_wait(qtbot, window, small_csv)
    window.data_panel.label_combo.setCurrentText(NO_LABEL)
    window.data_panel.label_combo.activated.emit(window.data_panel.label_combo.currentIndex())
    train_and_wait(qtbot, window, "iforest", {"n_estimators": 30})
    combo = window.threshold_panel.method_combo
    combo.setCurrentIndex(combo.findData("best_f1"))
    window.threshold_panel.apply_button.click()
    assert len(window.error_dialogs) == 1
    assert "labels or verdicts" in window.error_dialogs[0].text()
