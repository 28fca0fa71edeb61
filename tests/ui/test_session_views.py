"""The window as views over the session: what is saved is what was on screen; Save As when the file
changed; unsaved work asked about; per-file state reset; reasons per record; one score in force."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.session import VERDICT_FROM_RETRAIN
from tests.ui.conftest import open_and_wait, train_and_wait
from tests.ui.test_review_panel import choose_reason, key


def review_top(qtbot, w, n=20):
    panel = w.review_panel
    panel.view.setFocus()
    panel.select_row(0)
    for _ in range(n):
        key(qtbot, w, Qt.Key.Key_A if w.labels[panel.current_record()] else Qt.Key.Key_N)


def retrain(qtbot, w):
    with qtbot.waitSignal(w.retrained, timeout=120_000):
        w.review_panel.retrain_button.click()


def test_a_project_saved_after_a_retrain_reopens_as_it_was_and_exports_agree(qtbot, make_window, trained_window,
                                                                             tmp_path):
    w = trained_window
    review_top(qtbot, w)
    w.review_panel.select_row(3)
    choose_reason(w.review_panel, 2)
    retrain(qtbot, w)
    shown = (w.scores.copy(), w.severity.copy(), w.queue.flagged.copy(), w.threshold_panel.value,
             w.threshold_panel.method, w.session.verdicts)
    assert w.save_project(tmp_path / "case.adproj")
    assert not w.windowTitle().startswith("*")
    w.close()

    w2 = make_window()
    with qtbot.waitSignal(w2.scored, timeout=60_000):
        w2.open_project(tmp_path / "case.adproj")
    np.testing.assert_allclose(w2.scores, shown[0])
    np.testing.assert_allclose(w2.queue.severity, shown[1])
    assert np.array_equal(w2.queue.flagged, shown[2])
    assert (w2.threshold_panel.value, w2.threshold_panel.method) == shown[3:5]
    assert w2.session.verdicts == shown[5]
    assert "flagged" in w2.review_panel.retrain_status.text()
    out = tmp_path / "queue.csv"
    with qtbot.waitSignal(w2.exported, timeout=60_000):
        w2.export(out)
    exported = pd.read_csv(out)
    score_col = next(c for c in exported.columns if c.lower() in ("score", "anomaly_score"))
    assert exported[score_col].max() == pytest.approx(float(w2.scores.max()), rel=1e-6)


def test_ctrl_s_on_another_file_asks_where_and_leaves_the_first_project_alone(qtbot, trained_window, small_csv,
                                                                           tmp_path, monkeypatch):
    w = trained_window
    first = tmp_path / "first.adproj"
    assert w.save_project(first)
    saved = first.read_text()
    other = tmp_path / "other.csv"
    pd.read_csv(small_csv).head(400).to_csv(other, index=False)
    open_and_wait(qtbot, w, other)
    train_and_wait(qtbot, w, "iforest", {"n_estimators": 20})
    assert w.windowTitle().startswith("*other.csv")  # unsaved changes show in the title
    asked = []
    second = tmp_path / "second.adproj"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (asked.append(a) or str(second), ""))
    w.act_save.trigger()
    assert asked, "Ctrl+S on another file must ask where (Save As)"
    assert first.read_text() == saved
    assert json.loads(second.read_text())["data_file"].endswith("other.csv")
    assert not w.windowTitle().startswith("*")


def test_closing_with_unsaved_work_asks_and_cancel_keeps_the_window(qtbot, make_window, small_csv):
    w = make_window(ask=None)  # the real question box
    open_and_wait(qtbot, w, small_csv)
    train_and_wait(qtbot, w, "iforest", {"n_estimators": 20})
    answers = iter([QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard])

    def answer():
        box = w.unsaved_box
        if box is None:
            QTimer.singleShot(20, answer)
            return
        box.button(next(answers)).click()

    QTimer.singleShot(20, answer)
    w.close()
    assert w.isVisible()  # cancelled: nothing lost
    QTimer.singleShot(20, answer)
    w.close()
    assert not w.isVisible()


def test_retraining_keeps_the_rule_in_force_and_shows_the_flagged_counts(qtbot, trained_window):
    w = trained_window
    panel = w.threshold_panel
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("percentile"))
    panel.param_spin.setValue(5.0)
    panel.apply_button.click()
    before = w.queue.counts()["flagged"]
    review_top(qtbot, w, 30)
    retrain(qtbot, w)
    assert panel.method_combo.currentData() == "percentile" and panel.method == "percentile"
    after = w.queue.counts()["flagged"]
    assert after == pytest.approx(before, abs=3)
    assert f"flagged {before:,} → {after:,}" in w.review_panel.retrain_status.text()
    assert "Suggested" in panel.suggestion_label.text()


def test_opening_another_file_resets_what_belonged_to_the_previous_one(qtbot, trained_window, small_csv, tmp_path):
    from tests.ui.conftest import set_known_good_reference

    w = trained_window
    set_known_good_reference(qtbot, w, small_csv, tmp_path)
    review_top(qtbot, w, 10)
    retrain(qtbot, w)
    other = tmp_path / "sensors.csv"
    pd.DataFrame({"x1": np.arange(200.0), "x2": np.sin(np.arange(200.0))}).to_csv(other, index=False)
    open_and_wait(qtbot, w, other)
    assert w.reference is None and "known_good" not in w.data_panel.reference_label.text()
    assert not w.train_panel.use_reference()
    assert w.train_panel.status.text() == "Not trained yet."
    assert len(w.train_panel.loss_plot.train.getData()[0] or []) == 0
    assert w.review_panel.retrain_status.text() == ""
    assert len(w.error_plot.y) == 0 and len(w.threshold_panel.scores) == 0
    assert w.scores is None
    # a reference file without this file's columns: the message names the reference file
    w.set_reference(tmp_path / "known_good.csv")
    qtbot.waitUntil(lambda: len(w.error_dialogs) > 0, timeout=20_000)
    assert "known_good.csv" in w.error_dialogs[-1].text() and w.reference is None


def test_a_reason_is_saved_for_its_record_only_and_escape_returns_to_the_queue(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    panel.view.setFocus()
    panel.select_row(0)
    first = panel.current_record()
    key(qtbot, w, Qt.Key.Key_A)  # reviewed, then a reason chosen for it
    panel.select_record(first)
    choose_reason(panel, 3)
    reason = panel.reason_combo.currentText()
    assert w.store.get(str(w.keys[first])).reason == reason  # saved the moment it is chosen
    assert panel.view.hasFocus()
    key(qtbot, w, Qt.Key.Key_J)
    nxt = panel.current_record()
    key(qtbot, w, Qt.Key.Key_N)  # N gives a verdict (focus is not trapped) without the reason
    assert w.store.get(str(w.keys[nxt])).verdict == "normal"
    assert w.store.get(str(w.keys[nxt])).reason == ""
    panel.reason_combo.setFocus()
    qtbot.keyClick(panel.reason_combo, Qt.Key.Key_Escape)
    assert panel.view.hasFocus()


def test_every_view_uses_the_score_and_threshold_in_force_after_a_retrain(qtbot, trained_window):
    w = trained_window
    review_top(qtbot, w, 20)
    retrain(qtbot, w)
    s = w.session
    w.review_panel.select_row(0)
    record = w.review_panel.current_record()
    view = w.views.record_view(record)
    assert view.score == s.scores[record] and view.severity == s.severity[record]
    assert view.columns[-1] == VERDICT_FROM_RETRAIN and view.shares.sum() == pytest.approx(1.0)
    assert w.detail_panel.histogram.line.value() == pytest.approx(s.threshold)
    assert w.error_plot.threshold_line.value() == pytest.approx(s.threshold)
    assert w.threshold_panel.value == pytest.approx(s.threshold)
    assert np.array_equal(w.queue.flagged, s.flagged)
    w.detail_panel.set_what_if(view.columns[0], "1")
    assert "not possible" in w.detail_panel.what_if_label.text()
