"""ui.widgets: the shared job controls."""

from __future__ import annotations

from ui.widgets import PROGRESS_STEPS, job_controls


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
