"""simulate_review: the GUI's feedback path, with labels as the analyst."""

from __future__ import annotations

import numpy as np
import pytest

import engine.simulation as simulation
from engine.errors import AnomalyDeskError, Cancelled
from tests.conftest import hidden_cluster


def test_feedback_finds_more_than_the_static_ranking():
    frame, schema, y = hidden_cluster()
    # the static ranking reaches the hidden cluster only at the 5th batch; feedback needs a few batches after it
    r = simulation.simulate_review(frame, schema, y, detector="iforest", budget=80, batch=10, seed=0)
    assert r["reviewed"] == [10, 20, 30, 40, 50, 60, 70, 80]
    assert len(r["found_static"]) == len(r["found_feedback"]) == 8
    assert len(r["retrain_seconds"]) == 7 and r["retrain_seconds_max"] >= r["retrain_seconds_mean"] > 0
    assert np.all(np.diff(r["found_feedback"]) >= 0) and np.all(np.diff(r["found_static"]) >= 0)
    assert r["found_feedback"][0] == r["found_static"][0]  # the first batch is the static one
    assert r["found_feedback"][-1] >= r["found_static"][-1] + 5
    assert r["rows"] == len(frame) and r["anomalies"] == 30
    assert r["prepare_seconds"] > 0


def test_uses_the_verdict_store_and_reports_by_label_value(monkeypatch):
    frame, schema, y = hidden_cluster(1)
    opened = []

    class RecordingStore(simulation.VerdictStore):
        def __init__(self, path, user=None):
            opened.append(path)
            super().__init__(path, user)

    monkeypatch.setattr(simulation, "VerdictStore", RecordingStore)
    values = np.where(y, "local", "regular").astype(object)
    values[1540:1560] = "regular"
    values[np.flatnonzero(y)[:5]] = "global"
    r = simulation.simulate_review(frame, schema, y, detector="iforest", budget=25, batch=10,
                                   label_values=values)
    assert len(opened) == 1 and str(opened[0]).endswith(".sqlite")
    assert r["reviewed"] == [10, 20, 25]
    assert set(r["by_value"]) == {"global", "local"}
    assert r["by_value"]["global"]["count"] == 5 and r["by_value"]["local"]["count"] == 25
    total = [g + loc for g, loc in zip(r["by_value"]["global"]["found_feedback"],
                                       r["by_value"]["local"]["found_feedback"], strict=True)]
    assert total == r["found_feedback"]


def test_bad_arguments_and_cancel():
    frame, schema, y = hidden_cluster()
    with pytest.raises(AnomalyDeskError):
        simulation.simulate_review(frame, schema, y[:-1], detector="iforest")
    with pytest.raises(AnomalyDeskError):
        simulation.simulate_review(frame, schema, y, detector="iforest", batch=0)
    with pytest.raises(Cancelled):
        simulation.simulate_review(frame, schema, y, detector="iforest", should_stop=lambda: True)
