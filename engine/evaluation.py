"""Metrics against ground-truth labels, and ``evaluate``: fit, score and measure in one call (used by
the ``evaluate`` command and the benchmarks)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError, DataError

DEFAULT_BUDGET = 100


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise AnomalyDeskError(f"{y.size} labels for {s.size} scores")
    # a score the model could not compute ranks last-but-sure: treat NaN as the lowest score
    s = np.where(np.isnan(s), -np.inf, s)
    return y, s


def _ranking(scores: np.ndarray) -> np.ndarray:
    """Row indices from most to least anomalous (ties keep file order)."""
    return np.argsort(-scores, kind="stable")


def aucroc(labels, scores) -> float:
    """Area under the ROC curve (ties count half); NaN when only one class is present."""
    from scipy.stats import rankdata

    y, s = _check(labels, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    s = np.where(np.isinf(s), np.sign(s) * np.finfo(np.float64).max, s)
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def aucpr(labels, scores) -> float:
    """Average precision (area under the precision-recall curve, step-wise as in scikit-learn)."""
    from sklearn.metrics import average_precision_score

    y, s = _check(labels, scores)
    if y.sum() == 0:
        return float("nan")
    s = np.where(np.isinf(s), np.sign(s) * np.finfo(np.float64).max, s)
    return float(average_precision_score(y, s))


def p_at_n(labels, scores, n: int | None = None) -> float:
    """Precision among the ``n`` highest scores; ``n`` defaults to the number of true anomalies."""
    y, s = _check(labels, scores)
    n = int(y.sum()) if n is None else int(n)
    if n <= 0:
        return float("nan")
    top = _ranking(s)[:n]
    return float(y[top].sum() / n)


def found_at_budget(labels, scores, budget: int = DEFAULT_BUDGET) -> int:
    """How many true anomalies an analyst finds reviewing the ``budget`` highest-scored rows."""
    y, s = _check(labels, scores)
    return int(y[_ranking(s)[: int(budget)]].sum())


def top_share_count(n_rows: int, share: float = 0.01) -> int:
    return max(1, math.ceil(share * n_rows))


def by_value(values, anomalous, scores, share: float = 0.01) -> dict[str, dict[str, Any]]:
    """Per anomalous label value: its ``count``, ``in_top_1pct`` (how many rank in the top ``share``
    of all rows) and ``aucroc`` of that value against the normal rows."""
    values = np.asarray(values, dtype=object).reshape(-1)
    y, s = _check(anomalous, scores)
    top = np.zeros(y.size, dtype=bool)
    top[_ranking(s)[: top_share_count(y.size, share)]] = True
    out: dict[str, dict[str, Any]] = {}
    for v in sorted({str(v) for v in values[y]}):
        mask = y & (values.astype(str) == v)
        sub = mask | ~y
        out[v] = {"count": int(mask.sum()), "in_top_1pct": int((mask & top).sum()),
                  "aucroc": aucroc(mask[sub], s[sub])}
    return out


def metrics(labels, scores, values=None, budget: int = DEFAULT_BUDGET) -> dict[str, Any]:
    """All the figures ``evaluate --json`` reports, from labels (True = anomaly) and scores."""
    y, s = _check(labels, scores)
    out = {"aucroc": aucroc(y, s), "aucpr": aucpr(y, s), "p_at_n": p_at_n(y, s),
           "found_at_budget": found_at_budget(y, s, budget), "budget": int(budget),
           "n_anomalies": int(y.sum()), "rows": int(y.size),
           "top_1pct": top_share_count(y.size), "in_top_1pct": int(y[_ranking(s)[: top_share_count(y.size)]].sum())}
    out["by_value"] = by_value(values if values is not None else np.where(y, "anomaly", "normal"), y, s)
    return out


def load_labelled(csv: str | Path, label_column: str, normal_value: str | None = None):
    """(loaded file, schema with the label column, anomalous: bool per row, label values); refuses a
    file whose label column is missing or holds one class only, naming the file and column."""
    from engine.io import label_values, label_vector, load
    from engine.schema import SchemaOverrides

    loaded, schema = load(csv)
    if label_column not in loaded.frame.columns:
        raise DataError(f"no label column '{label_column}' in the data (columns: "
                        f"{', '.join(map(str, loaded.frame.columns[:20]))})", file=str(csv), column=label_column)
    schema = SchemaOverrides(label_column=label_column, normal_value=normal_value).apply(schema)
    if schema.normal_value is None:
        from engine.io import infer_schema

        schema.normal_value = infer_schema(loaded.frame[[label_column]]).normal_value
        if schema.normal_value is None:
            schema.normal_value = str(loaded.frame[label_column].astype(str).value_counts().index[0])
    anomalous = label_vector(loaded.frame, schema)
    values = label_values(loaded.frame, schema)
    if anomalous.all() or not anomalous.any():
        distinct = sorted({str(v) for v in values})[:5]
        raise DataError(f"the label column needs both normal and anomalous rows to evaluate; normal value "
                        f"{schema.normal_value!r}, values found: {', '.join(distinct)}",
                        file=str(csv), column=label_column)
    from engine.io import validate_for_training

    validate_for_training(loaded.frame, schema, path=str(csv))  # no feature column: say which file
    return loaded, schema, anomalous, values


def load_training_frame(train_csv: str | Path, schema) -> pd.DataFrame:
    """A reference file of known-good rows to train on; it must hold every feature column of ``schema``."""
    from engine.io import read_csv

    train_frame = read_csv(train_csv).frame
    missing = [c for c in schema.feature_columns if c not in train_frame.columns]
    if missing:
        raise DataError(f"the training file lacks column(s) {', '.join(missing)} of the scored file",
                        file=str(train_csv))
    return train_frame


def evaluate(csv: str | Path, label_column: str, *, normal_value: str | None = None,
             train_csv: str | Path | None = None, detector: str = "auto", params: dict | None = None,
             epochs: int | None = None, seed: int = 0, device: str = "auto",
             progress: Callable[..., None] | None = None, budget: int = DEFAULT_BUDGET) -> dict[str, Any]:
    """Fit on ``train_csv`` (or on ``csv`` itself, labels hidden), score ``csv``, compare with labels."""
    from engine.detectors import accepted_params
    from engine.pipeline import AnomalyModel

    loaded, schema, anomalous, values = load_labelled(csv, label_column, normal_value)
    params = dict(params or {})
    if epochs is not None:
        params.update(accepted_params(detector, {"epochs": int(epochs)}))
    train_frame = load_training_frame(train_csv, schema) if train_csv is not None else loaded.frame
    model = AnomalyModel(detector=detector, params=params, device=device, seed=seed)
    model.fit(train_frame, schema, progress=progress, known_good=train_csv is not None)
    start = time.perf_counter()
    result = model.score(loaded.frame)
    score_seconds = time.perf_counter() - start
    out = metrics(anomalous, result.scores, values, budget)
    out.update(detector=detector, fit_seconds=model.fit_seconds_, score_seconds=score_seconds,
               rows=int(len(loaded.frame)), train_rows=int(len(train_frame)), seed=int(seed),
               device=model.device_, label_column=label_column, normal_value=schema.normal_value,
               feature_columns=list(schema.feature_columns))
    if result.member_scores and len(result.member_scores) > 1:
        several = len(out["by_value"]) > 1
        out["members"] = {name: ({"aucroc": aucroc(anomalous, s), "by_value": by_value(values, anomalous, s)}
                                 if several else {"aucroc": aucroc(anomalous, s)})
                          for name, s in result.member_scores.items()}
        weights = getattr(model.detector_, "weights_", None)
        if weights is not None:
            for name, w in zip(result.member_scores, weights, strict=False):
                out["members"][name]["weight"] = float(w)
    return out


_load_labelled = load_labelled  # the earlier private name
