"""The detector interface every model follows (scikit-learn/PyOD conventions).

A detector works on an encoded ``FeatureMatrix`` (engine.features). ``__init__`` only stores
parameters (each under its own name, so ``get_params`` reads them back by the constructor's signature,
as scikit-learn's does); ``fit`` learns normal behaviour; ``decision_function`` returns anomaly scores,
**higher = more anomalous** (PyOD's name; scikit-learn's ``score_samples`` means the opposite, so ours is
only an alias kept for old callers); fitted attributes end in ``_``. State is saved as JSON-able metadata
plus a dict of numpy arrays (written as safetensors by engine.bundle), never pickled.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from engine.errors import NotFittedError

ProgressCallback = Callable[..., None]  # progress(fraction, message, **metrics)
StopCallback = Callable[[], bool]


_SCORING_THREADS = 1  # see set_scoring_threads


def set_scoring_threads(n: int) -> None:
    """Batches a detector may score side by side in this process (each batch on one thread; the caller
    sets torch's own threads to 1). Batches are independent, so the threads never wait on each other
    the way an operation split over more threads than free cores does. 1 (the default): one batch at a
    time, torch's threads as configured."""
    global _SCORING_THREADS
    _SCORING_THREADS = max(1, int(n))


def scoring_threads() -> int:
    return _SCORING_THREADS


@dataclass
class Explained:
    """What scoring a block of rows yields: scores, column shares and (when asked) expected values in the
    encoded space; ``members`` holds an ensemble's members' raw scores."""

    scores: np.ndarray
    contributions: np.ndarray
    expected: np.ndarray | None = None
    members: dict[str, np.ndarray] | None = None


class Detector:
    name: ClassVar[str] = "base"
    #: the fitted attribute whose presence means "fitted"
    _fitted_attr: ClassVar[str] = "n_features_in_"

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments as stored (lists copied), by the constructor's signature."""
        names = [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return {n: _copied(getattr(self, n)) for n in names}

    def _store_params(self, args: dict[str, Any]) -> None:
        """Store each constructor argument under its own name; call first thing with ``locals()``."""
        for name, value in args.items():
            if name not in ("self", "__class__"):
                setattr(self, name, list(value) if isinstance(value, tuple) else value)

    def fit(self, fm, *, sample_weight: np.ndarray | None = None, progress: ProgressCallback | None = None,
            should_stop: StopCallback | None = None) -> Detector:
        """Learn normal behaviour from ``fm`` (a FeatureMatrix). ``sample_weight`` (n,) >= 0: rows with
        weight 0 are not learnt as normal (confirmed anomalies); weights > 1 stress confirmed normals."""
        raise NotImplementedError

    def decision_function(self, fm) -> np.ndarray:
        """Anomaly score per row, float64, higher = more anomalous."""
        raise NotImplementedError

    def score_samples(self, fm) -> np.ndarray:
        """Alias of ``decision_function`` (higher = more anomalous, unlike scikit-learn's)."""
        return self.decision_function(fm)

    def feature_contributions(self, fm) -> np.ndarray:
        """(n_rows, len(fm.source_columns)) non-negative shares of each original column in the row's
        score; rows sum to 1 (a categorical column's one-hot block counts as one column)."""
        raise NotImplementedError

    def expected_values(self, fm) -> np.ndarray | None:
        """The model's reconstruction/expectation in the encoded feature space (n_rows, n_features),
        or None when the method has none."""
        return None

    def score_and_explain(self, fm, expected: bool = True) -> Explained:
        """Scores, contributions and (``expected``) expected values of the same rows. Detectors whose
        three answers come from one pass (a forward pass, the ECDF look-ups) override this to do that
        pass once; the results equal the three methods called one by one."""
        return Explained(scores=self.decision_function(fm), contributions=self.feature_contributions(fm),
                         expected=self.expected_values(fm) if expected else None)

    # -- persistence: JSON metadata + named arrays, no pickle --------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Detector:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")


def _copied(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    return value


def column_shares(per_feature: np.ndarray, fm) -> np.ndarray:
    """Sum non-negative per-encoded-feature amounts (n, n_features) into the original columns
    (n, len(fm.source_columns)) and normalise each row to 1 (a row with nothing to share gets equal
    shares). Every detector's ``feature_contributions`` ends with this."""
    per_feature = np.nan_to_num(np.asarray(per_feature, dtype=np.float64), nan=0.0, posinf=1e30)
    per_feature = np.clip(per_feature, 0.0, None)
    n_cols = len(fm.source_columns)
    out = np.zeros((per_feature.shape[0], n_cols), dtype=np.float64)
    index = np.asarray(fm.source_index, dtype=np.int64)
    for j in range(n_cols):
        cols = np.flatnonzero(index == j)
        if cols.size:
            out[:, j] = per_feature[:, cols].sum(axis=1)
    return shares_of_columns(out)


def shares_of_columns(out: np.ndarray) -> np.ndarray:
    """Non-negative amounts per original column (n, n_columns) normalised to shares that sum to 1 per row
    (equal shares for a row with nothing to share)."""
    n_cols = out.shape[1]
    out = np.clip(np.nan_to_num(np.asarray(out, dtype=np.float64), nan=0.0, posinf=1e30), 0.0, None)
    total = out.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    out = np.divide(out, total, out=np.zeros_like(out), where=total > 0)
    if n_cols:
        out[empty] = 1.0 / n_cols
    return out


def encoded_values(fm) -> np.ndarray:
    """The encoded matrix as float64 with non-finite values replaced (detectors must never see NaN)."""
    return np.nan_to_num(np.asarray(fm.values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
