"""The Compare screen, driven as a user would: tick detectors, Run, read the table, choose a
disagreement and send it to the queue, run the contamination study, play the file back."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import open_and_wait, set_known_good_reference
from ui.main_window import TAB_COMPARE, TAB_REVIEW

CHEAP = ("pca", "ecod", "iforest")


def tick(panel, names):
    for i in range(panel.detector_list.count()):
        item = panel.detector_list.item(i)
        item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)


@pytest.fixture
def compared(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    window.tabs.setCurrentIndex(TAB_COMPARE)
    panel = window.compare_panel
    tick(panel, CHEAP)
    assert panel.checked_detectors() == [n for n in panel.checked_detectors() if n in CHEAP]
    with qtbot.waitSignal(panel.compared, timeout=120_000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    return window


def test_run_fills_a_sortable_table_and_overlaid_curves(qtbot, compared):
    w = compared
    panel = w.compare_panel
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    values = panel.table_values()
    assert set(values) == set(CHEAP)
    for name, row in values.items():
        assert 0.5 < float(row["AUCROC"]) <= 1.0, name
        assert int(row["Parameters"].replace(",", "")) > 0
        assert float(row["Fit s"]) >= 0
        assert float(row["F1"]) <= float(row["Best F1"]) + 1e-9
    # sorted by AUCROC, best first; a click on the header re-sorts by another column
    aucs = [float(v["AUCROC"]) for v in values.values()]
    assert aucs == sorted(aucs, reverse=True)
    panel.table.sortItems(10, Qt.SortOrder.AscendingOrder)
    params = [int(v["Parameters"].replace(",", "")) for v in panel.table_values().values()]
    assert params == sorted(params)
    # one ROC and one PR curve per detector, each in the legend
    roc_items = [c for c in panel.roc_plot.getPlotItem().listDataItems() if c.name()]
    assert len(roc_items) == 3 and all(len(c.getData()[0]) > 2 for c in roc_items)
    assert len([c for c in panel.pr_plot.getPlotItem().listDataItems() if c.name()]) == 3
    assert "label column" in panel.status.text()
    assert "automatic rule" in panel.threshold_note.text()  # trained on the file itself


def test_disagreement_pair_goes_to_the_review_queue(qtbot, compared):
    w = compared
    panel = w.compare_panel
    panel.pages.setCurrentIndex(1)
    assert panel.pair_combo.count() == 3
    # the pair with the most disagreement, in its larger direction
    best = max(panel.comparison.disagreements, key=lambda d: max(len(d.only_a), len(d.only_b)))
    first = len(best.only_a) >= len(best.only_b)
    # as a user: pick the pair in the list, then the direction
    texts = [panel.pair_combo.itemText(i) for i in range(panel.pair_combo.count())]
    panel.pair_combo.setCurrentIndex(next(i for i, t in enumerate(texts) if t.startswith(f"{best.a} vs {best.b} ")))
    qtbot.mouseClick(panel.only_a if first else panel.only_b, Qt.MouseButton.LeftButton)
    assert (panel.only_a if first else panel.only_b).isChecked()
    a, b, rows = panel.current_disagreement()
    assert len(rows) > 0 and panel.pair_rows.rowCount() == min(len(rows), 500)
    assert f"flagged by {a} and not by {b}" in panel.pair_summary.text()
    ra, rb = panel.comparison.run(a), panel.comparison.run(b)
    assert np.all(ra.flagged[rows]) and not np.any(rb.flagged[rows])
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    assert w.tabs.currentIndex() == TAB_REVIEW
    shown = {w.queue.record_at(r) for r in range(w.queue.rowCount())}
    assert shown == {int(r) for r in rows}
    assert w.review_panel.subset_label.isVisible() and f"not by {b}" in w.review_panel.subset_label.text()
    qtbot.mouseClick(w.review_panel.subset_clear, Qt.MouseButton.LeftButton)
    assert w.queue.rowCount() == len(w.loaded.frame)
    # another file: the results (row numbers of the old one) are gone
    open_and_wait(qtbot, w, w.loaded.path)
    assert panel.comparison is None and panel.table.rowCount() == 0 and panel.pair_combo.count() == 0
    assert not panel.send_button.isEnabled() and not panel.play_button.isEnabled()


def test_contamination_study_plots_aucroc_against_contamination(qtbot, compared):
    w = compared
    panel = w.compare_panel
    panel.pages.setCurrentIndex(2)
    panel.study_detector.setCurrentText("pca")
    panel.shares_edit.setText("0, 2, 50")
    with qtbot.waitSignal(panel.study_done, timeout=120_000):
        qtbot.mouseClick(panel.study_button, Qt.MouseButton.LeftButton)
    study = panel.study
    x, y = panel.study_curve.getData()
    assert list(x) == [0.0, 2.0] and len(y) == 2  # 60 labelled anomalies: too few for 50%
    assert "not enough anomalies" in panel.study_status.text()
    assert study.points[0].aucroc == pytest.approx(y[0])
    panel.shares_edit.setText("0, abc")
    qtbot.mouseClick(panel.study_button, Qt.MouseButton.LeftButton)
    assert "abc" in panel.study_status.text()
    assert not w.jobs.slot("contamination").busy


def test_streaming_playback_plays_pauses_and_counts(qtbot, compared):
    w = compared
    panel = w.compare_panel
    panel.pages.setCurrentIndex(3)
    panel.speed_spin.setValue(100)
    assert panel.play_button.isEnabled()
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert panel.playing and panel.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: panel.last_step is not None and panel.last_step.seen >= 300, timeout=10_000)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert not panel.playing and panel.play_button.text() == "Play"
    seen = panel.last_step.seen
    qtbot.wait(200)
    assert panel.last_step.seen == seen  # paused: nothing moves
    assert panel.counters.rowCount() == 3
    # faster, then to the end: the final counters are each detector's confusion matrix
    panel.speed_spin.setValue(400)
    with qtbot.waitSignal(panel.playback_finished, timeout=20_000):
        qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert not panel.playing
    last = panel.last_step
    assert last.seen == last.total == len(w.loaded.frame)
    for run in panel.comparison.runs:
        c, m = last.counters[run.name], run.metrics
        assert (c.tp, c.fp, c.fn, c.tn) == (m["tp"], m["fp"], m["fn"], m["tn"])
    row = [panel.counters.item(0, col).text() for col in range(9)]
    assert row[1] == f"{len(w.loaded.frame):,}"
    prec_curve = panel._play_curves[row[0]][0]
    assert len(prec_curve.getData()[0]) >= 3  # a running line, not one point
    # flagging at the best-F1 threshold instead: the playback starts over and ends on those counts
    panel.play_threshold.setCurrentIndex(panel.play_threshold.findData("best_f1"))
    assert panel.last_step is None and not panel.playing
    panel.speed_spin.setValue(100_000)
    panel.step_playback()
    for run in panel.comparison.runs:
        c = panel.last_step.counters[run.name]
        assert c.tp + c.fp == int((run.scores >= run.metrics["best_f1_threshold"]).sum())


def test_cancel_and_close_during_a_run_leave_nothing_behind(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    panel = window.compare_panel
    tick(panel, ("ocsvm", "iforest", "pca"))
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.cancel_button.isEnabled()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.run_button.isEnabled(), timeout=60_000)
    assert panel.comparison is None and "cancelled" in panel.status.text().lower()
    # start again and close the window mid-run: the fixture checks no thread or timer survives
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)


def test_without_a_file_or_detectors_it_says_what_to_do(qtbot, window):
    panel = window.compare_panel
    tick(panel, ())
    panel.run_button.click()
    assert "at least one" in panel.status.text()
    tick(panel, ("pca",))
    panel.run_button.click()
    assert "Open a file" in panel.status.text()


def test_with_a_reference_file_each_threshold_flags_one_percent_of_its_rows(qtbot, window, small_csv, tmp_path):
    open_and_wait(qtbot, window, small_csv)
    set_known_good_reference(qtbot, window, small_csv, tmp_path)
    window.tabs.setCurrentIndex(TAB_COMPARE)
    panel = window.compare_panel
    tick(panel, ("pca",))
    with qtbot.waitSignal(panel.compared, timeout=120_000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "reference file" in panel.status.text()
    assert "1% of the reference file's known-good rows" in panel.threshold_note.text()
    run = panel.comparison.run("pca")
    assert run.threshold_method == "target_fpr"
    assert (run.model.train_scores_ >= run.threshold).mean() <= 0.01
