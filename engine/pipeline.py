"""AnomalyModel: fitted preprocessing + a detector, the unit the GUI, CLI and feedback loop use.

WALKING SKELETON: minimal first version (isolation forest only, no bundle format yet); the
detectors work (issue 3) replaces the internals, keeping this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import NotFittedError
from engine.features import Preprocessor
from engine.schema import Schema

ProgressCallback = Callable[..., None]  # progress(fraction, message, **metrics)
StopCallback = Callable[[], bool]


@dataclass(frozen=True)
class ScoreResult:
    scores: np.ndarray  # (n,) float64, higher = more anomalous
    severity: np.ndarray  # (n,) float64 in 0..100: percentile of the score among training scores
    contributions: np.ndarray  # (n, n_columns) share of the score per original feature column, rows sum to 1
    columns: list[str]  # original feature columns, the order of ``contributions``
    expected: pd.DataFrame | None = None  # model's expected value per feature column, where it has one
    member_scores: dict[str, np.ndarray] | None = None  # ensemble members' scores, for re-rankers


class AnomalyModel:
    def __init__(self, detector: str = "auto", params: dict | None = None, device: str = "auto", seed: int = 0):
        self.detector = detector
        self.params = dict(params or {})
        self.device = device
        self.seed = seed

    def fit(self, frame: pd.DataFrame, schema: Schema, progress: ProgressCallback | None = None,
            should_stop: StopCallback | None = None, sample_weight: np.ndarray | None = None) -> AnomalyModel:
        """Fit preprocessing and detector. ``sample_weight`` (n,) >= 0: 0 drops a row from what the
        model learns as normal (a confirmed anomaly), > 1 stresses it (a confirmed normal)."""
        from sklearn.ensemble import IsolationForest

        self.schema_ = schema
        self.preprocessor_ = Preprocessor().fit(frame, schema)
        fm = self.preprocessor_.transform(frame)
        self.model_ = IsolationForest(random_state=self.seed).fit(fm.values)
        self.train_scores_ = np.sort(-self.model_.score_samples(fm.values))
        if progress:
            progress(1.0, "fitted")
        return self

    def transform(self, frame: pd.DataFrame):
        """The encoded feature matrix the detector sees (for re-rankers and what-if views)."""
        return self.preprocessor_.transform(frame)

    def score(self, frame: pd.DataFrame) -> ScoreResult:
        if not hasattr(self, "model_"):
            raise NotFittedError("AnomalyModel is not fitted: call fit() first")
        fm = self.preprocessor_.transform(frame)
        scores = -self.model_.score_samples(fm.values).astype(np.float64)
        severity = 100.0 * np.searchsorted(self.train_scores_, scores, side="right") / len(self.train_scores_)
        # Approximation: a feature's share is its absolute deviation from the median.
        dev = np.abs(fm.values)
        per_col = np.zeros((len(frame), len(fm.source_columns)))
        np.add.at(per_col.T, fm.source_index, dev.T)
        per_col /= np.maximum(per_col.sum(axis=1, keepdims=True), 1e-12)
        return ScoreResult(scores, severity, per_col, list(fm.source_columns))
