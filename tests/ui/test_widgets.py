"""ui.widgets: the shared job controls."""

from __future__ import annotations

from PySide6.QtWidgets import QScrollArea

from ui.widgets import PROGRESS_STEPS, counted, job_controls


def test_job_controls_run_and_cancel_and_progress(qtbot):
    calls = []
    run, cancel, bar = job_controls("Go", lambda: calls.append("run"), lambda: calls.append("cancel"), name="demo")
    for w in (run, cancel, bar):
        qtbot.addWidget(w)
    assert run.text() == "Go" and run.objectName() == "demoRun" and run.isEnabled()
    assert cancel.objectName() == "demoCancel" and not cancel.isEnabled()  # nothing to cancel yet
    assert bar.objectName() == "demoProgress" and (bar.minimum(), bar.maximum()) == (0, PROGRESS_STEPS)
    run.click()
    cancel.setEnabled(True)
    cancel.click()
    assert calls == ["run", "cancel"]


def _wheel(widget, steps: int) -> bool:
    """Sends a wheel event of ``steps`` notches down; True when the widget took (accepted) it."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    pos = QPointF(widget.rect().center())
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, -120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_scrolling_over_the_train_settings_scrolls_the_form_and_changes_no_setting(qtbot, window):
    """Wheel over an unfocused spin box or combo box in the Train screen's scrolled settings: the
    setting stays and the field passes the wheel on (Qt then scrolls the form: checked in the real
    window under Xvfb, a synthetic event is not passed on); clicked into, the field takes the wheel."""
    panel = window.train_panel
    panel.detector_combo.setCurrentText("autoencoder")
    window.resize(1200, 600)
    window.show()
    qtbot.waitExposed(window)
    window.tabs.setCurrentWidget(panel)
    early, optimizer = panel.form.editors["early_stopping"], panel.form.editors["optimizer"]
    scroll = panel.findChild(QScrollArea)
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() > 0)  # the settings are taller than the view
    before = (early.value(), optimizer.currentText(), panel.detector_combo.currentText())
    taken = [_wheel(w, 3) for w in (early, optimizer, panel.detector_combo, panel.sample_spin)]
    assert (early.value(), optimizer.currentText(), panel.detector_combo.currentText()) == before
    assert taken == [False] * 4  # each passed the wheel on to the scroll area
    early.setFocus()
    qtbot.waitUntil(early.hasFocus)
    assert _wheel(early, 1)
    assert early.value() == before[0] - 1  # a focused field still takes the wheel


def test_counted_says_one_or_many():
    assert counted(1, "normal") == "1 normal" and counted(2, "normal") == "2 normals"
    assert counted(1, "anomaly", "anomalies") == "1 anomaly" and counted(0, "anomaly", "anomalies") == "0 anomalies"
    assert counted(12345, "row") == "12,345 rows"
