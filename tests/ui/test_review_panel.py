"""The Review screen: sort, filter, keyboard verdicts, undo, notes, counter, retrain with verdicts."""

import numpy as np
from PySide6.QtCore import Qt

from engine.feedback import VerdictStore
from ui.queue_model import SCORE


def key(qtbot, window, k):
    qtbot.keyClick(window.review_panel.view, k)


def choose_reason(panel, index):
    """What choosing an entry of the reason box does (the popup sets it and emits activated)."""
    panel.reason_combo.setFocus()
    panel.reason_combo.setCurrentIndex(index)
    panel.reason_combo.activated.emit(index)


def test_sort_by_clicking_headers_and_filter_by_checkbox_and_text(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    panel.view.horizontalHeader().setSortIndicator(SCORE, Qt.SortOrder.AscendingOrder)
    assert np.all(np.diff(w.scores[w.queue.visible]) >= 0)
    panel.view.horizontalHeader().setSortIndicator(SCORE, Qt.SortOrder.DescendingOrder)
    assert np.all(np.diff(w.scores[w.queue.visible]) <= 0)
    panel.flagged_check.setChecked(True)
    assert 0 < w.queue.rowCount() == w.queue.counts()["flagged"]
    panel.flagged_check.setChecked(False)
    panel.column_combo.setCurrentText("WAERS")
    qtbot.keyClicks(panel.value_edit, "C001")
    qtbot.waitUntil(lambda: w.queue.filter.column_value == "C001", timeout=3000)
    assert {w.loaded.frame["WAERS"].iat[r] for r in w.queue.visible} == {"C001"}
    panel.clear_filters()
    assert w.queue.rowCount() == 1500
    assert "showing 1,500 of 1,500" in panel.counter.text()


def test_keyboard_verdicts_are_saved_instantly_and_undo_works(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    panel.view.setFocus()
    panel.select_row(0)
    first, second, third = (w.queue.record_at(i) for i in range(3))
    key(qtbot, w, Qt.Key.Key_A)
    assert panel.current_record() == second  # moves on to the next record
    key(qtbot, w, Qt.Key.Key_N)
    key(qtbot, w, Qt.Key.Key_U)
    keys = w.keys
    # saved in the verdict database the moment the key was pressed (a second connection sees them)
    with VerdictStore(w.store.path) as other:
        assert other.get(str(keys[first])).verdict == "anomaly"
        assert other.get(str(keys[second])).verdict == "normal"
        assert other.get(str(keys[third])).verdict == "unsure"
    assert "<b>3</b> reviewed" in panel.counter.text()
    assert "<b>1</b> confirmed" in panel.counter.text()
    key(qtbot, w, Qt.Key.Key_Z)
    assert w.queue.verdicts[third] == 0
    assert w.store.get(str(keys[third])) is None or w.store.get(str(keys[third])).verdict is None
    assert panel.current_record() == third  # undo goes back to the record
    assert "<b>2</b> reviewed" in panel.counter.text()
    audit = w.store.audit()
    assert [a.action for a in audit][-1] == "undo"


def test_arrows_and_j_k_move_and_enter_adds_a_note(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    panel.view.setFocus()
    panel.select_row(5)
    key(qtbot, w, Qt.Key.Key_J)
    assert panel.view.currentIndex().row() == 6
    key(qtbot, w, Qt.Key.Key_K)
    key(qtbot, w, Qt.Key.Key_K)
    assert panel.view.currentIndex().row() == 4
    key(qtbot, w, Qt.Key.Key_Down)
    assert panel.view.currentIndex().row() == 5
    record = panel.current_record()
    key(qtbot, w, Qt.Key.Key_Return)
    assert panel.note_edit.hasFocus()
    qtbot.keyClicks(panel.note_edit, "same vendor as case 12")
    qtbot.keyClick(panel.note_edit, Qt.Key.Key_Return)
    assert panel.view.hasFocus()
    assert w.store.get(str(w.keys[record])).note == "same vendor as case 12"
    assert w.queue.notes[record] == "same vendor as case 12"
    # typing in the note field never gives verdicts
    key(qtbot, w, Qt.Key.Key_Return)
    qtbot.keyClicks(panel.note_edit, "an")
    qtbot.keyClick(panel.note_edit, Qt.Key.Key_Escape)
    assert w.queue.verdicts[record] == 0
    assert "A</b> anomaly" in panel.cheat_sheet.text() and panel.cheat_sheet.isVisible()


def test_verdict_with_reason_code_and_filters_by_verdict(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    assert panel.reason_combo.count() > 1
    panel.view.setFocus()
    panel.select_row(0)
    record = panel.current_record()
    choose_reason(panel, 1)
    reason = panel.reason_combo.currentText()
    assert panel.view.hasFocus()  # back to the queue: the next key is a verdict
    key(qtbot, w, Qt.Key.Key_A)
    assert w.store.get(str(w.keys[record])).reason == reason
    assert panel.reason_combo.currentText() == ""  # the next record shows its own (no) reason
    panel.verdict_combo.setCurrentText("anomaly")
    assert w.queue.visible.tolist() == [record]
    panel.verdict_combo.setCurrentIndex(0)
    panel.unreviewed_check.setChecked(True)
    assert record not in set(w.queue.visible.tolist())


def test_retrain_with_verdicts_rescores_and_keeps_the_analysts_place(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    labels = w.labels
    panel.view.setFocus()
    panel.select_row(0)
    for _ in range(30):  # review the top of the queue with the ground truth as the analyst
        record = panel.current_record()
        key(qtbot, w, Qt.Key.Key_A if labels[record] else Qt.Key.Key_N)
    place = panel.current_record()
    before = w.scores.copy()
    with qtbot.waitSignal(w.retrained, timeout=120_000):
        panel.retrain_button.click()
    assert not np.allclose(before, w.scores)
    assert panel.current_record() == place
    assert "retrained with" in panel.retrain_status.text()
    assert w.threshold_panel.method == "default"  # the rule in force stays; least cost is only offered
    assert w.threshold_panel.suggestion_button.isVisibleTo(w.threshold_panel)
    w.threshold_panel.suggestion_button.click()
    assert w.threshold_panel.method == "cost" and w.session.threshold_rule.method == "cost"
    assert panel.retrain_button.isEnabled()
    # the verdicts survive and a second retrain works from the saved state
    assert w.queue.counts()["reviewed"] == 30
    with qtbot.waitSignal(w.retrained, timeout=120_000):
        w.start_retrain()


def test_next_batch_shows_the_records_the_review_loop_picks_and_moves_on_after_verdicts(qtbot, trained_window):
    """Next batch before a retrain: the ten top-scored records. The analyst reviews them and retrains;
    Ctrl+B then shows ten others, none reviewed, and the line says how the batch was made."""
    w = trained_window
    panel = w.review_panel
    assert panel.next_batch_button.isEnabled() and w.act_next_batch.isEnabled()
    panel.next_batch_button.click()
    first = [int(r) for r in w.queue.visible]
    assert sorted(first) == sorted(np.argsort(-w.session.scores, kind="stable")[:10].tolist())
    assert panel.subset_label.isVisible() and "the next 10 to review" in panel.subset_label.text()
    assert panel.current_record() in first and panel.view.hasFocus()
    for _ in range(10):  # the analyst's verdicts, with the ground truth, down the batch
        key(qtbot, w, Qt.Key.Key_A if w.labels[panel.current_record()] else Qt.Key.Key_N)
    assert w.queue.counts()["reviewed"] == 10
    with qtbot.waitSignal(w.retrained, timeout=120_000):
        panel.retrain_button.click()
    w.act_next_batch.trigger()
    second = [int(r) for r in w.queue.visible]
    assert len(second) == 10 and not set(second) & set(first)
    assert not (w.queue.verdicts[second] > 0).any()
    assert panel.subset_label.text().startswith("Showing 10 record(s): the next 10 to review")
    panel.subset_clear.click()
    assert len(w.queue.visible) == w.queue.n


def test_three_verdicts_at_the_top_keep_the_rest_of_the_queue_flagged(qtbot, trained_window):
    """A, A, N on the first three records and Retrain: the cut from those three alone would flag only
    the two confirmed anomalies; the queue keeps the rule in force (the default) on the new scores."""
    from engine.thresholds import default_threshold

    w = trained_window
    panel = w.review_panel
    panel.view.setFocus()
    panel.select_row(0)
    for k in (Qt.Key.Key_A, Qt.Key.Key_A, Qt.Key.Key_N):
        key(qtbot, w, k)
    with qtbot.waitSignal(w.retrained, timeout=120_000):
        panel.retrain_button.click()
    assert w.queue.counts()["reviewed"] == 3
    assert w.threshold_panel.current_cut() == default_threshold(w.scores).value
    assert int(w.queue.flagged.sum()) > 2
    assert "retrained with 2 anomalies and 1 normal in" in panel.retrain_status.text()  # not "1 normals"


def test_a_thousand_quick_verdicts_are_all_kept(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    panel.view.setFocus()
    panel.select_row(0)
    for i in range(1000):
        key(qtbot, w, Qt.Key.Key_N if i % 3 else Qt.Key.Key_A)
    assert w.queue.counts()["reviewed"] == 1000
    assert len([r for r in w.store.all().values() if r.verdict]) == 1000


def test_a_long_retrain_status_does_not_widen_the_review_panel(qtbot, trained_window):
    """The status line under the queue wraps: a long message must not raise the panel's minimum width,
    or the splitter squeezes the detail view beside it to nothing."""
    panel = trained_window.review_panel
    before = panel.minimumSizeHint().width()
    panel.retrain_status.setText("retrained with 1234 anomalies and 5678 normals in 12.3 s " * 3)
    panel.counter.setText("3 reviewed · 200 flagged · 2 confirmed anomalies · 1 normal · 0 unsure · " * 3)
    panel.layout().activate()  # recompute the size hints now, as showing the window would
    assert panel.minimumSizeHint().width() <= before + 50
