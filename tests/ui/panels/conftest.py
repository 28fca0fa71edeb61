"""Shared by the Compare screen's page tests: tick detectors, run a comparison as a user would."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import open_and_wait
from ui.main_window import TAB_COMPARE

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
