"""The Compare screen's disagreements page: choose a pair and a direction, send it to the review queue."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import open_and_wait
from ui.main_window import TAB_REVIEW


def test_disagreement_pair_goes_to_the_review_queue(qtbot, compared):
    w = compared
    panel = w.compare_panel
    panel.pages.setCurrentIndex(1)
    assert panel.disagreements.pair_combo.count() == 3
    # the pair with the most disagreement, in its larger direction
    best = max(panel.comparison.disagreements, key=lambda d: max(len(d.only_a), len(d.only_b)))
    first = len(best.only_a) >= len(best.only_b)
    # as a user: pick the pair in the list, then the direction
    texts = [panel.disagreements.pair_combo.itemText(i) for i in range(panel.disagreements.pair_combo.count())]
    panel.disagreements.pair_combo.setCurrentIndex(next(i for i, t in enumerate(texts) if t.startswith(f"{best.a} vs {best.b} ")))
    qtbot.mouseClick(panel.disagreements.only_a if first else panel.disagreements.only_b, Qt.MouseButton.LeftButton)
    assert (panel.disagreements.only_a if first else panel.disagreements.only_b).isChecked()
    a, b, rows = panel.disagreements.current_disagreement()
    assert len(rows) > 0 and panel.disagreements.pair_rows.rowCount() == min(len(rows), 500)
    assert f"flagged by {a} and not by {b}" in panel.disagreements.pair_summary.text()
    ra, rb = panel.comparison.run(a), panel.comparison.run(b)
    assert np.all(ra.flagged[rows]) and not np.any(rb.flagged[rows])
    qtbot.mouseClick(panel.disagreements.send_button, Qt.MouseButton.LeftButton)
    assert w.tabs.currentIndex() == TAB_REVIEW
    shown = {w.queue.record_at(r) for r in range(w.queue.rowCount())}
    assert shown == {int(r) for r in rows}
    assert w.review_panel.subset_label.isVisible() and f"not by {b}" in w.review_panel.subset_label.text()
    qtbot.mouseClick(w.review_panel.subset_clear, Qt.MouseButton.LeftButton)
    assert w.queue.rowCount() == len(w.loaded.frame)
    # another file: the results (row numbers of the old one) are gone
    open_and_wait(qtbot, w, w.loaded.path)
    assert panel.comparison is None and panel.metrics.table.rowCount() == 0 and panel.disagreements.pair_combo.count() == 0
    assert not panel.disagreements.send_button.isEnabled() and not panel.playback.play_button.isEnabled()
