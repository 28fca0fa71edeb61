"""The Compare screen, driven as a user would: tick detectors, Run, read the metrics table and curves;
cancel, close, and say what to do without a file."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.ui.conftest import open_and_wait, set_known_good_reference
from tests.ui.panels.conftest import CHEAP, tick
from ui.main_window import TAB_COMPARE


def test_run_fills_a_sortable_table_and_overlaid_curves(qtbot, compared):
    w = compared
    panel = w.compare_panel
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    values = panel.metrics.table_values()
    assert set(values) == set(CHEAP)
    for name, row in values.items():
        assert 0.5 < float(row["AUCROC"]) <= 1.0, name
        assert int(row["Parameters"].replace(",", "")) > 0
        assert float(row["Fit s"]) >= 0
        assert float(row["F1"]) <= float(row["Best F1"]) + 1e-9
    # sorted by AUCROC, best first; a click on the header re-sorts by another column
    aucs = [float(v["AUCROC"]) for v in values.values()]
    assert aucs == sorted(aucs, reverse=True)
    panel.metrics.table.sortItems(10, Qt.SortOrder.AscendingOrder)
    params = [int(v["Parameters"].replace(",", "")) for v in panel.metrics.table_values().values()]
    assert params == sorted(params)
    # one ROC and one PR curve per detector, each in the legend
    roc_items = [c for c in panel.metrics.roc_plot.getPlotItem().listDataItems() if c.name()]
    assert len(roc_items) == 3 and all(len(c.getData()[0]) > 2 for c in roc_items)
    assert len([c for c in panel.metrics.pr_plot.getPlotItem().listDataItems() if c.name()]) == 3
    assert "label column" in panel.status.text()
    assert "automatic rule" in panel.metrics.threshold_note.text()  # trained on the file itself


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
    assert "1% of the reference file's known-good rows" in panel.metrics.threshold_note.text()
    run = panel.comparison.run("pca")
    assert run.threshold_method == "target_fpr"
    assert (run.model.train_scores_ >= run.threshold).mean() <= 0.01
