"""The Review screen's team tools, driven as an analyst would: bulk verdicts with a confirmation and one
undo, rules from a record (dialog, Rules panel, removal), reviewer/reason/note filters, the review-progress
plot, the automatic retrain, and the screen's readability at 1280x800."""

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtWidgets import QLabel, QMessageBox

from engine.feedback import VerdictStore
from ui.main_window import TAB_REVIEW
from ui.plots import WHAT_DRIVES, WHY_FLAGGED
from ui.queue_model import SEVERITY


def answer_confirmation(qtbot, window, button=QMessageBox.StandardButton.Yes, seen=None):
    """Click ``button`` in the bulk confirmation as soon as it opens (it is modal); its text goes to ``seen``."""
    tools = window.review_tools

    def click():
        box = tools.confirm_box
        if box is None or not box.isVisible():
            QTimer.singleShot(20, click)
            return
        if seen is not None:
            seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, click)


def test_a_key_with_several_rows_selected_gives_one_batch_that_one_undo_takes_back(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    w.tabs.setCurrentIndex(TAB_REVIEW)
    panel.view.setFocus()
    panel.select_row(0)
    for _ in range(3):  # Shift+Down extends the selection
        qtbot.keyClick(panel.view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    records = panel.selected_records()
    assert len(records) == 4
    seen = []
    answer_confirmation(qtbot, w, seen=seen)
    qtbot.keyClick(panel.view, Qt.Key.Key_N)
    assert seen and "Mark 4 records as normal?" in seen[0]
    assert all(w.queue.verdicts[r] == 2 for r in records)
    with VerdictStore(w.store.path) as other:
        assert [other.get(str(w.keys[r])).verdict for r in records] == ["normal"] * 4
        assert other.get(str(w.keys[records[0]])).user == "tester"
    assert "<b>4</b> reviewed" in panel.counter.text()
    w.act_undo.trigger()  # Review > Undo (Ctrl+Z): the whole batch
    assert all(w.queue.verdicts[r] == 0 for r in records)
    assert all(w.store.get(str(w.keys[r])) is None or not w.store.get(str(w.keys[r])).verdict for r in records)
    assert "<b>0</b> reviewed" in panel.counter.text()


def test_verdict_for_the_filter_result_with_note_and_reason_after_a_confirmation(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    panel.flagged_check.setChecked(True)
    n = w.queue.rowCount()
    assert 1 < n < 1500
    qtbot.mouseClick(panel.bulk_button, Qt.MouseButton.LeftButton)
    dialog = w.review_tools.bulk_dialog
    assert dialog.shown.isChecked() and f"({n:,})" in dialog.shown.text()
    # cancelled at the confirmation: nothing changes
    answer_confirmation(qtbot, w, QMessageBox.StandardButton.Cancel)
    dialog.accept()
    assert (w.queue.verdicts == 0).all()
    qtbot.mouseClick(panel.bulk_button, Qt.MouseButton.LeftButton)
    dialog = w.review_tools.bulk_dialog
    dialog.verdict.setCurrentText("anomaly")
    qtbot.keyClicks(dialog.note, "batch of duplicates")
    dialog.reason.setCurrentText("duplicate payment")
    seen = []
    answer_confirmation(qtbot, w, seen=seen)
    dialog.accept()
    assert f"Mark {n:,} records as anomaly?" in seen[0]
    flagged = np.flatnonzero(w.queue.flagged)
    assert (w.queue.verdicts[flagged] == 1).all() and (w.queue.verdicts == 1).sum() == n
    rec = w.store.get(str(w.keys[flagged[0]]))
    assert (rec.verdict, rec.note, rec.reason) == ("anomaly", "batch of duplicates", "duplicate payment")
    w.act_undo.trigger()
    assert (w.queue.verdicts == 0).all()


def test_a_rule_from_a_record_takes_its_records_out_of_the_flagged_queue(qtbot, trained_window, tmp_path):
    w = trained_window
    panel, detail, tools = w.review_panel, w.detail_panel, w.review_tools
    panel.sort(SEVERITY, Qt.SortOrder.DescendingOrder)
    panel.select_row(0)
    record = panel.current_record()
    assert w.session.flagged[record]
    flagged_before = int(w.session.flagged.sum())
    qtbot.mouseClick(detail.rule_button, Qt.MouseButton.LeftButton)
    dialog = tools.rule_dialog
    assert dialog is not None and dialog.table.rowCount() >= 1
    # the analyst narrows it to the record's account (a category value)
    account = str(w.loaded.frame["HKONT"].iat[record]) if "HKONT" in w.loaded.frame.columns else None
    column = "HKONT" if account is not None else w.session.frame.columns[1]
    value = account if account is not None else str(w.session.frame[column].iat[record])
    while dialog.table.rowCount() > 1:
        dialog.table.removeRow(1)
    dialog.set_condition(0, column=column, op="equals", value=value)
    dialog.name.setText("known account")
    dialog.accept()
    assert [r.name for r in w.session.rules] == ["known account"]
    covered = (w.session.frame[column].astype(str) == value).to_numpy()
    assert not w.session.flagged[record] and not w.queue.flagged[record]
    assert int(w.queue.flagged.sum()) == int(w.session.flagged.sum()) < flagged_before
    items = tools.rules_panel.list
    assert items.count() == 1 and f"{int(covered.sum()):,} record" in items.item(0).text()
    # still visible with the filter
    panel.ruled_check.setChecked(True)
    assert w.queue.rowCount() == int(covered.sum())
    panel.ruled_check.setChecked(False)
    # saved in the project and restored
    assert w.save_project(tmp_path / "rules.adproj")
    items.setCurrentRow(0)
    qtbot.mouseClick(tools.rules_panel.remove_button, Qt.MouseButton.LeftButton)
    assert w.session.rules == [] and items.count() == 0
    assert int(w.queue.flagged.sum()) == flagged_before
    w.session.dirty = False
    with qtbot.waitSignal(w.scored, timeout=120_000):
        w.open_project(tmp_path / "rules.adproj")
    qtbot.waitUntil(lambda: items.count() == 1, timeout=30_000)
    assert not w.queue.flagged[record]


def test_a_bad_rule_edit_is_refused_in_the_dialog(qtbot, trained_window):
    w = trained_window
    w.review_panel.select_row(0)
    qtbot.mouseClick(w.detail_panel.rule_button, Qt.MouseButton.LeftButton)
    dialog = w.review_tools.rule_dialog
    dialog.set_condition(0, op="at_most", value="lots")
    dialog.accept()
    assert dialog.isVisible() and "not a number" in dialog.error.text()
    assert w.session.rules == []
    dialog.reject()


def test_reviewed_by_me_reason_and_note_filters(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    keys = w.keys
    panel.select_row(0)
    mine = panel.current_record()
    qtbot.keyClick(panel.view, Qt.Key.Key_A)
    other_record = panel.current_record()
    w.session.store.user = "someone else"
    w.session.verdict(str(keys[other_record]), "normal", note="Known vendor, monthly", reason="known vendor")
    w.session.store.user = "tester"
    w.views.show_all_verdicts()
    w.review_panel.set_reasons(w.session.store.reasons() + ["known vendor"])
    panel.mine_check.setChecked(True)
    assert w.queue.visible.tolist() == [mine]
    panel.mine_check.setChecked(False)
    panel.reason_filter.setCurrentText("known vendor")
    assert w.queue.visible.tolist() == [other_record]
    panel.clear_filters()
    qtbot.keyClicks(panel.note_filter, "VENDOR")
    qtbot.waitUntil(lambda: w.queue.filter.note == "VENDOR", timeout=3000)
    assert w.queue.visible.tolist() == [other_record]


def test_progress_plot_counts_confirmed_anomalies_per_review_beside_the_static_ranking(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    panel.sort(SEVERITY, Qt.SortOrder.DescendingOrder)
    panel.select_row(0)
    panel.view.setFocus()
    for k in (Qt.Key.Key_A, Qt.Key.Key_N, Qt.Key.Key_A):
        qtbot.keyClick(panel.view, k)
    plot = w.review_tools.progress_plot
    qtbot.waitUntil(lambda: plot.found.getData()[0] is not None and len(plot.found.getData()[0]) == 3,
                    timeout=5000)
    assert plot.found.getData()[1].tolist() == [1.0, 1.0, 2.0]
    assert plot.static.isVisible()  # the ledger has a label column
    static = plot.static.getData()[1]
    order = np.argsort(-w.result.scores, kind="stable")[:3]
    assert static.tolist() == np.cumsum(w.labels[order]).astype(float).tolist()


def test_automatic_retrain_every_n_verdicts_keeps_the_selected_record(qtbot, trained_window):
    w = trained_window
    panel = w.review_panel
    assert panel.auto_retrain.value() == 0  # off by default
    panel.auto_retrain.setValue(2)
    panel.select_row(0)
    panel.view.setFocus()
    qtbot.keyClick(panel.view, Qt.Key.Key_A)
    assert not w.jobs.slot("retrain").busy
    with qtbot.waitSignal(w.retrained, timeout=120_000):
        qtbot.keyClick(panel.view, Qt.Key.Key_N)
        place = panel.current_record()
    assert panel.current_record() == place
    assert "retrained with" in panel.retrain_status.text()
    w.session.favoured = "knn"  # what the re-ranker reports when it prefers a detector
    w.views.show_retrain()
    assert "the verdicts favour knn" in panel.retrain_status.text()


def test_legend_and_the_why_flagged_title(qtbot, trained_window):
    w = trained_window
    names = [label.text for _sample, label in w.error_plot.legend.items]
    for name in ("all records", "verdict: anomaly", "verdict: normal", "labelled anomaly", "threshold"):
        assert any(name in n for n in names), names
    panel = w.review_panel
    panel.sort(SEVERITY, Qt.SortOrder.DescendingOrder)
    panel.select_row(0)
    assert w.detail_panel.chart.getPlotItem().titleLabel.text == WHY_FLAGGED
    panel.select_row(w.queue.rowCount() - 1)
    assert not w.session.flagged[panel.current_record()]
    assert w.detail_panel.chart.getPlotItem().titleLabel.text == WHAT_DRIVES


def test_at_1280x800_ten_queue_rows_show_and_no_labels_overlap(qtbot, trained_window):
    w = trained_window
    w.resize(1280, 800)
    w.tabs.setCurrentIndex(TAB_REVIEW)
    panel = w.review_panel
    panel.select_row(0)
    qtbot.wait(50)
    view = panel.view
    height = view.viewport().height()
    rows = sum(1 for y in range(0, height, view.rowHeight(0)) if view.rowAt(y) >= 0
               and y + view.rowHeight(0) <= height)
    assert rows >= 10, f"{rows} rows visible in a {height}px queue"
    # the counter reads as a line, not a word a line squeezed beside the retrain controls
    assert panel.counter.height() <= 2 * panel.counter.fontMetrics().height() + 8
    labels = [lb for root in (panel, w.detail_panel) for lb in root.findChildren(QLabel)
              if lb.isVisible() and lb.text()]
    rects = [QRect(lb.mapTo(w, QPoint(0, 0)), lb.size()) for lb in labels]
    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            assert not rects[i].intersects(rects[j]), (labels[i].text()[:40], labels[j].text()[:40])
