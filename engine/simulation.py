"""Simulated review: the analyst replaced by ground-truth labels, to measure what feedback is worth.

``simulate_review`` runs the very path the GUI runs: verdicts go into a ``VerdictStore`` (a SQLite
file in a temporary folder), are re-attached to rows by ``record_keys``, and the ranking is
recomputed by ``retrain_with_verdicts`` after every batch.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError, stop_if_asked
from engine.feedback import VerdictStore, found_curve, next_batch, record_keys, retrain_with_verdicts
from engine.schema import Schema


def simulate_review(frame: pd.DataFrame, schema: Schema, labels, *, detector: str = "auto", budget: int = 100,
                    batch: int = 10, seed: int = 0, progress: Callable[..., None] | None = None,
                    should_stop: Callable[[], bool] | None = None, model=None,
                    params: Mapping[str, Any] | None = None, label_values=None,
                    refit: bool | str = "auto") -> dict:
    """Review ``budget`` records in batches of ``batch``, with and without feedback.

    ``labels``: boolean (n,) ground truth (True = anomaly). Returns a dict with
    ``found_static`` / ``found_feedback`` (cumulative anomalies found after each batch: the static
    ranking, and the ranking retrained on all verdicts so far), ``retrain_seconds`` (one per retrain),
    ``retrain_seconds_mean``/``_max``, ``prepare_seconds`` (the first call, which scores the rows and
builds the region forest and column profile the later retrains reuse), ``fit_seconds``, ``detector``, ``rows``, ``anomalies``,
    ``budget``, ``batch``, ``seed``, ``favoured`` (per retrain, the view the verdicts favour, or None). ``model``: an AnomalyModel to use instead of a new one.
    ``label_values``: the raw label per row (such as ``global``/``local``); when given, the result
    also holds ``by_value``: for each anomalous value its ``count`` and cumulative ``found_static`` /
    ``found_feedback`` lists."""
    from engine.pipeline import AnomalyModel

    y = np.asarray(labels).astype(bool).ravel()
    n = len(frame)
    if len(y) != n:
        raise AnomalyDeskError(f"{len(y)} labels for {n} rows")
    if budget < 1 or batch < 1:
        raise AnomalyDeskError("budget and batch must be at least 1")
    budget = min(budget, n)

    def stop_check() -> None:
        stop_if_asked(should_stop, "simulated review was cancelled")

    t0 = time.perf_counter()
    if model is None:
        model = AnomalyModel(detector=detector, seed=seed)
    fit_progress = (lambda f, m="", **kw: progress(0.2 * f, m, **kw)) if progress else None
    model.fit(frame, schema, progress=fit_progress, should_stop=should_stop)
    fit_seconds = time.perf_counter() - t0
    stop_check()

    # Static: the detector's own ranking, reviewed top-down.
    scored = model.score(frame)
    base = np.asarray(scored.scores, dtype=np.float64)
    static_order = np.argsort(-base, kind="stable")[:budget]
    hits = found_curve(y[static_order])
    ends = list(range(batch, budget, batch)) + [budget]
    found_static = [int(hits[e - 1]) for e in ends]

    # Feedback: each round, ``next_batch`` (the GUI's queue) picks `batch` unreviewed records for verdicts.
    keys = record_keys(frame, schema)
    retrain_seconds: list[float] = []
    found_feedback: list[int] = []
    reviewed = np.zeros(n, dtype=bool)
    feedback_order: list[int] = []
    favoured: list[str | None] = []
    with tempfile.TemporaryDirectory(prefix="anomaly-desk-sim-") as tmp:
        store = VerdictStore(Path(tmp) / "verdicts.sqlite", user="simulated-analyst")
        try:
            tp = time.perf_counter()
            result = retrain_with_verdicts(model, frame, schema, {}, should_stop=should_stop, refit=False,
                                           params=params, scored=scored)
            prepare_seconds = time.perf_counter() - tp
            found = 0
            for r, end in enumerate(ends):
                stop_check()
                take = next_batch(result.state, result.scores, reviewed, end - int(reviewed.sum()))
                for i in take:
                    store.set_verdict(keys[i], "anomaly" if y[i] else "normal", reason="simulated")
                reviewed[take] = True
                feedback_order.extend(int(i) for i in take)
                found += int(y[take].sum())
                found_feedback.append(found)
                if progress:
                    progress(0.2 + 0.8 * (r + 1) / len(ends), f"reviewed {end} of {budget}",
                             found=found, static=found_static[r])
                if end >= budget:
                    break
                verdicts = store.verdicts_by_row(keys)
                result = retrain_with_verdicts(model, frame, schema, verdicts, state=result.state,
                                               should_stop=should_stop, params=params, refit=refit)
                retrain_seconds.append(result.seconds)
                favoured.append(result.favoured[0] if result.favoured else None)
        finally:
            store.close()
    out = {
        "found_static": found_static,
        "found_feedback": found_feedback,
        "reviewed": [int(e) for e in ends],
        "retrain_seconds": retrain_seconds,
        "retrain_seconds_mean": float(np.mean(retrain_seconds)) if retrain_seconds else 0.0,
        "retrain_seconds_max": float(np.max(retrain_seconds)) if retrain_seconds else 0.0,
        "fit_seconds": fit_seconds,
        "prepare_seconds": prepare_seconds,
        "favoured": favoured,
        "detector": getattr(model, "detector_name_", None) or getattr(model, "detector", detector),
        "rows": n,
        "anomalies": int(y.sum()),
        "budget": int(budget),
        "batch": int(batch),
        "seed": int(seed),
    }
    if label_values is not None:
        values = np.asarray(label_values).astype(str)
        fb_order = np.asarray(feedback_order, dtype=np.int64)
        by_value = {}
        for v in sorted(set(values[y])):
            is_v = values == v
            s_hits = found_curve(is_v[static_order])
            f_hits = found_curve(is_v[fb_order])
            by_value[v] = {"count": int(is_v.sum()),
                           "found_static": [int(s_hits[e - 1]) for e in ends],
                           "found_feedback": [int(f_hits[e - 1]) for e in ends if e <= len(f_hits)]}
        out["by_value"] = by_value
    return out
