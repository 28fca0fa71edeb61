"""ui.workers: jobs that overlap share one process-wide BLAS thread limit."""

from __future__ import annotations

from ui.workers import _CoreLimit


def test_overlapping_jobs_share_one_limit_until_the_last_one_ends(monkeypatch):
    events = []

    class FakeLimiter:  # threadpoolctl's limiter, recording instead of changing the BLAS pools
        def __init__(self, limits):
            events.append(("limit", limits))

        def restore_original_limits(self):
            events.append("restore")

    monkeypatch.setattr("threadpoolctl.threadpool_limits", FakeLimiter)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    limit = _CoreLimit()
    first, second = limit(), limit()
    first.__enter__()
    second.__enter__()  # a second job starts while the first runs
    first.__exit__(None, None, None)
    assert events == [("limit", 3)]  # the second job still runs with a core left to the GUI
    second.__exit__(None, None, None)
    assert events == [("limit", 3), "restore"]
    with limit():
        pass
    assert events == [("limit", 3), "restore", ("limit", 3), "restore"]
