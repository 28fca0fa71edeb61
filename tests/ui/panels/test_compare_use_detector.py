"""Compare -> queue: "Use this detector" trains the chosen detector for the queue; Disagreements show keys."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ui.main_window import TAB_REVIEW


def test_use_this_detector_trains_it_and_shows_the_review(qtbot, compared):
    w = compared
    panel = w.compare_panel
    assert not panel.use_button.isEnabled()  # nothing chosen yet
    table = panel.metrics.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "ecod")
    table.selectRow(row)
    assert panel.use_button.isEnabled() and "ecod" in panel.use_button.text()
    with qtbot.waitSignal(w.scored, timeout=120_000):
        qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    assert w.model.detector == "ecod" and w.train_panel.detector() == "ecod"
    assert w.tabs.currentIndex() == TAB_REVIEW
    assert w.queue.rowCount() == len(w.loaded.frame) and w.scores is not None


def test_disagreements_show_record_keys(qtbot, compared):
    w = compared
    page = w.compare_panel.disagreements
    best = max(range(page.pair_combo.count()),
               key=lambda i: sum(len(x) for x in (w.compare_panel.comparison.disagreements[i].only_a,
                                                  w.compare_panel.comparison.disagreements[i].only_b)))
    page.pair_combo.setCurrentIndex(best)
    a, b, rows = page.current_disagreement()
    if not len(rows):
        page.only_b.setChecked(True)
        a, b, rows = page.current_disagreement()
    assert len(rows) > 0
    assert page.pair_rows.horizontalHeaderItem(0).text() == "Record key"
    shown = [page.pair_rows.item(i, 0).text() for i in range(min(5, page.pair_rows.rowCount()))]
    assert shown == [str(w.keys[r]) for r in rows[:len(shown)]]
    assert str(w.keys[rows[0]]) != f"{int(rows[0]) + 1:,}"  # a key, not the row number
