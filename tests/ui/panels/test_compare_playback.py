"""The Compare screen's streaming playback: play, pause, speed, counters, thresholds."""

from __future__ import annotations

from PySide6.QtCore import Qt


def test_streaming_playback_plays_pauses_and_counts(qtbot, compared):
    w = compared
    panel = w.compare_panel
    panel.pages.setCurrentIndex(3)
    panel.playback.speed_spin.setValue(100)
    assert panel.playback.play_button.isEnabled()
    qtbot.mouseClick(panel.playback.play_button, Qt.MouseButton.LeftButton)
    assert panel.playback.playing and panel.playback.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: panel.playback.last_step is not None and panel.playback.last_step.seen >= 300, timeout=10_000)
    qtbot.mouseClick(panel.playback.play_button, Qt.MouseButton.LeftButton)
    assert not panel.playback.playing and panel.playback.play_button.text() == "Play"
    seen = panel.playback.last_step.seen
    qtbot.wait(200)
    assert panel.playback.last_step.seen == seen  # paused: nothing moves
    assert panel.playback.counters.rowCount() == 3
    # faster, then to the end: the final counters are each detector's confusion matrix
    panel.playback.speed_spin.setValue(400)
    with qtbot.waitSignal(panel.playback.finished, timeout=20_000):
        qtbot.mouseClick(panel.playback.play_button, Qt.MouseButton.LeftButton)
    assert not panel.playback.playing
    last = panel.playback.last_step
    assert last.seen == last.total == len(w.loaded.frame)
    for run in panel.comparison.runs:
        c, m = last.counters[run.name], run.metrics
        assert (c.tp, c.fp, c.fn, c.tn) == (m["tp"], m["fp"], m["fn"], m["tn"])
    row = [panel.playback.counters.item(0, col).text() for col in range(9)]
    assert row[1] == f"{len(w.loaded.frame):,}"
    prec_curve = panel.playback._play_curves[row[0]][0]
    assert len(prec_curve.getData()[0]) >= 3  # a running line, not one point
    # flagging at the best-F1 threshold instead: the playback starts over and ends on those counts
    panel.playback.play_threshold.setCurrentIndex(panel.playback.play_threshold.findData("best_f1"))
    assert panel.playback.last_step is None and not panel.playback.playing
    panel.playback.speed_spin.setValue(100_000)
    panel.playback.step()
    for run in panel.comparison.runs:
        c = panel.playback.last_step.counters[run.name]
        assert c.tp + c.fp == int((run.scores >= run.metrics["best_f1_threshold"]).sum())
