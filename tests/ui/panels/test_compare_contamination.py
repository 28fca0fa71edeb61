"""The Compare screen's contamination study: AUCROC against anomalies mixed into training."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt


def test_contamination_study_plots_aucroc_against_contamination(qtbot, compared):
    w = compared
    panel = w.compare_panel
    panel.pages.setCurrentIndex(2)
    panel.contamination.study_detector.setCurrentText("pca")
    panel.contamination.shares_edit.setText("0, 2, 50")
    with qtbot.waitSignal(panel.contamination.done, timeout=120_000):
        qtbot.mouseClick(panel.contamination.study_button, Qt.MouseButton.LeftButton)
    study = panel.contamination.study
    x, y = panel.contamination.study_curve.getData()
    assert list(x) == [0.0, 2.0] and len(y) == 2  # 60 labelled anomalies: too few for 50%
    assert "not enough anomalies" in panel.contamination.study_status.text()
    assert study.points[0].aucroc == pytest.approx(y[0])
    panel.contamination.shares_edit.setText("0, abc")
    qtbot.mouseClick(panel.contamination.study_button, Qt.MouseButton.LeftButton)
    assert "abc" in panel.contamination.study_status.text()
    assert not w.jobs.slot("contamination").busy
