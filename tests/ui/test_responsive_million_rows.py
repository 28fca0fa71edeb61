"""Issue 7: the real window stays responsive while it scores 1,000,000 rows, and verdicts given by
keyboard meanwhile are all kept.

A QTimer heartbeat must keep firing throughout training + scoring + showing the result, with no gap
above a generous bound (CI machines are noisy: the tight 100 ms figure belongs to
benchmarks/bench_gui_million_rows.py). While the model scores, the analyst gives verdicts with the
keyboard; every one must be in the verdict store and in the queue afterwards.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt, QTimer

from tests.ui.conftest import open_and_wait

ROWS = 1_000_000
MAX_GAP_S = 2.0  # generous: the event loop must never freeze for seconds


@pytest.fixture(scope="module")
def million_csv(tmp_path_factory):
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "DOC": np.arange(100_000_000, 100_000_000 + ROWS),
        "AMOUNT": rng.lognormal(6, 1.2, ROWS).round(2),
        "QTY": rng.integers(1, 40, ROWS),
        "COMPANY": np.array([f"B{i:03d}" for i in range(20)])[rng.integers(0, 20, ROWS)],
        "ACCOUNT": np.array([f"G{i:03d}" for i in range(60)])[rng.integers(0, 60, ROWS)],
    })
    path = tmp_path_factory.mktemp("million") / "ledger_1m.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_window_stays_responsive_and_keeps_verdicts_while_scoring_a_million_rows(qtbot, window, million_csv):
    w = window
    open_and_wait(qtbot, w, million_csv, timeout=180_000)
    assert w.queue.rowCount() == ROWS
    panel = w.review_panel
    panel.view.setFocus()
    panel.select_row(0)
    w.train_panel.set_detector("pca", {})
    w.train_panel.sample_spin.setValue(20_000)

    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))

    given: dict[int, str] = {}  # record -> the verdict the analyst gave last
    during_job = [0]
    keys = [(Qt.Key.Key_N, "normal"), (Qt.Key.Key_A, "anomaly"), (Qt.Key.Key_U, "unsure"), (Qt.Key.Key_N, "normal")]

    def analyst():
        if not panel.view.hasFocus():
            panel.view.setFocus()
        record = panel.current_record()
        if record < 0:
            return
        k, verdict = keys[len(given) % len(keys)]
        qtbot.keyClick(panel.view, k)
        given[record] = verdict
        if w.jobs.slot("train").busy:
            during_job[0] += 1

    typing = QTimer()
    typing.setInterval(25)
    typing.timeout.connect(analyst)

    heartbeat.start()
    typing.start()
    t0 = time.perf_counter()
    try:
        with qtbot.waitSignal(w.scored, timeout=300_000):
            w.train_panel.train_button.click()
        qtbot.wait(300)  # the window repaints the scored queue and plots
    finally:
        typing.stop()
        heartbeat.stop()
    elapsed = time.perf_counter() - t0
    assert not w.error_dialogs, [d.text() for d in w.error_dialogs]
    assert w.scores is not None and len(w.scores) == ROWS

    times = np.array([t0, *ticks, time.perf_counter()])
    gaps = np.diff(times)
    assert len(ticks) >= 0.1 * elapsed / 0.010, f"only {len(ticks)} heartbeats in {elapsed:.1f} s"
    assert gaps.max() < MAX_GAP_S, f"the event loop froze for {gaps.max():.2f} s (of {elapsed:.1f} s)"

    # the analyst kept working while the model scored, and nothing given was lost
    assert during_job[0] >= 10, f"only {during_job[0]} verdicts could be given while training"
    stored = w.store.all()
    for record, verdict in given.items():
        assert stored[str(w.keys[record])].verdict == verdict
        assert w.queue.verdicts[record] == {"anomaly": 1, "normal": 2, "unsure": 3}[verdict]
    assert w.queue.counts()["reviewed"] == len(given)
    assert len([r for r in stored.values() if r.verdict]) == len(given)
