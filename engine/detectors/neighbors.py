"""Nearest-neighbour detectors: kNN distance and the local outlier factor (LOF).

They see what isolation forests miss: a row in a sparse pocket between dense clusters, where no
single feature is extreme (ADBench's letter, vowels, optdigits). Both keep a reference set of at
most ``max_reference_rows`` training rows (drawn at random beyond that, so fitting and scoring stay
linear in the rows scored); the set and the per-row figures LOF needs are saved as arrays.

A scored row that is an exact copy of a reference row skips that one copy (leave-self-out), so a
file scored against itself gets the same scores whether a row was drawn into the reference set or
not. Contributions: the squared distance to a neighbour splits exactly by feature; a row's shares
are those squares averaged over its neighbours.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.detectors.base import Detector, column_shares, encoded_values
from engine.detectors.classical import checked_weights, fitted_input, unlogged_values, weighted_rows
from engine.errors import TRAINING_CANCELLED, AnomalyDeskError, stop_if_asked

_CHUNK = 4096


class _NeighborDetector(Detector):
    def __init__(self, n_neighbors: int = 20, max_reference_rows: int = 10000, scaling: str = "encoded",
                 seed: int = 0):
        if int(n_neighbors) < 1:
            raise AnomalyDeskError(f"{self.name}: n_neighbors must be at least 1, not {n_neighbors!r}")
        if int(max_reference_rows) < 2:
            raise AnomalyDeskError(f"{self.name}: max_reference_rows must be at least 2")
        if scaling not in ("minmax", "encoded"):
            raise AnomalyDeskError(f"{self.name}: scaling must be 'minmax' or 'encoded', not {scaling!r}")
        self.n_neighbors, self.max_reference_rows, self.seed = int(n_neighbors), int(max_reference_rows), seed
        self.scaling = scaling

    def _raw(self, fm) -> np.ndarray:
        """``encoded``: the engine's encoding (robust-scaled, logged amounts); ``minmax``: the unlogged
        values scaled to the training range per feature (ADBench's preparation)."""
        return unlogged_values(fm) if self.scaling == "minmax" else encoded_values(fm)

    def _reference(self, fm, sample_weight) -> np.ndarray:
        x = self._raw(fm)
        w = checked_weights(sample_weight, x.shape[0])
        rng = np.random.default_rng(self.seed)
        ref = weighted_rows(x, w, rng)
        if ref.shape[0] > self.max_reference_rows:
            ref = ref[np.sort(rng.choice(ref.shape[0], size=self.max_reference_rows, replace=False))]
        if ref.shape[0] < 2:
            raise AnomalyDeskError(f"{self.name}: need at least 2 training rows")
        kept = x if w is None else x[w > 0]
        self.low_ = kept.min(axis=0) if self.scaling == "minmax" else np.zeros(x.shape[1])
        span = kept.max(axis=0) - self.low_ if self.scaling == "minmax" else np.ones(x.shape[1])
        self.span_ = np.where(span > 0, span, 1.0)
        return np.ascontiguousarray((ref - self.low_) / self.span_)

    def _fit_reference(self, fm, sample_weight, should_stop) -> None:
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        self.reference_ = self._reference(fm, sample_weight)
        self.n_features_in_ = self.reference_.shape[1]

    @property
    def k_(self) -> int:
        return min(self.n_neighbors, self.reference_.shape[0] - 1)

    def _neighbors(self, x: np.ndarray):
        """(distances, indices), each (n, k_), to the nearest reference rows, one exact copy skipped."""
        from sklearn.neighbors import NearestNeighbors

        k = self.k_
        nn = NearestNeighbors(n_neighbors=k + 1).fit(self.reference_)
        dist = np.empty((x.shape[0], k))
        idx = np.empty((x.shape[0], k), dtype=np.int64)
        for start in range(0, x.shape[0], _CHUNK):
            d, i = nn.kneighbors(x[start:start + _CHUNK])
            self_copy = d[:, 0] <= 0.0
            dist[start:start + len(d)] = np.where(self_copy[:, None], d[:, 1:], d[:, :-1])
            idx[start:start + len(d)] = np.where(self_copy[:, None], i[:, 1:], i[:, :-1])
        return dist, idx

    def _matrix(self, fm) -> np.ndarray:
        x = fitted_input(self, fm, self._raw)
        return (x - self.low_) / self.span_

    def feature_contributions(self, fm) -> np.ndarray:
        x = self._matrix(fm)
        _, idx = self._neighbors(x)
        per_feature = np.zeros_like(x)
        for j in range(idx.shape[1]):
            per_feature += (x - self.reference_[idx[:, j]]) ** 2
        return column_shares(per_feature, fm)

    def _base_state(self):
        self._check_fitted()
        return ({"params": self.get_params(), "n_features_in_": self.n_features_in_},
                {"reference": self.reference_, "low": self.low_, "span": self.span_})

    @classmethod
    def _base_from_state(cls, meta, arrays):
        det = cls(**meta["params"])
        det.reference_ = np.ascontiguousarray(np.asarray(arrays["reference"], dtype=np.float64))
        det.n_features_in_ = int(meta["n_features_in_"])
        det.low_ = np.asarray(arrays["low"], dtype=np.float64)
        det.span_ = np.asarray(arrays["span"], dtype=np.float64)
        d = det.n_features_in_
        if (det.reference_.ndim != 2 or det.reference_.shape[1] != d or det.reference_.shape[0] < 2
                or det.low_.shape != (d,) or det.span_.shape != (d,) or np.any(det.span_ <= 0)):
            raise AnomalyDeskError(f"{cls.name}: the reference rows do not match the model")
        return det


class KNNDetector(_NeighborDetector):
    """kNN distance: the mean Euclidean distance to the ``n_neighbors`` nearest reference rows (the
    mean is steadier than PyOD's default, the distance to the k-th)."""

    name: ClassVar[str] = "knn"

    def __init__(self, n_neighbors: int = 20, max_reference_rows: int = 10000, scaling: str = "encoded",
                 seed: int = 0):
        super().__init__(n_neighbors=n_neighbors, max_reference_rows=max_reference_rows, scaling=scaling,
                         seed=seed)

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        self._fit_reference(fm, sample_weight, should_stop)
        if progress:
            progress(1.0, f"kNN fitted ({self.reference_.shape[0]} reference rows)")
        return self

    def decision_function(self, fm) -> np.ndarray:
        return self._neighbors(self._matrix(fm))[0].mean(axis=1)

    def get_state(self):
        return self._base_state()

    @classmethod
    def from_state(cls, meta, arrays):
        return cls._base_from_state(meta, arrays)


class LOFDetector(_NeighborDetector):
    """Local outlier factor (Breunig et al. 2000): the mean local reachability density of a row's
    neighbours over its own, so a row counts as far only relative to how dense its neighbourhood is."""

    name: ClassVar[str] = "lof"

    def __init__(self, n_neighbors: int = 20, max_reference_rows: int = 10000, scaling: str = "minmax",
                 seed: int = 0):
        super().__init__(n_neighbors=n_neighbors, max_reference_rows=max_reference_rows, scaling=scaling,
                         seed=seed)

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        self._fit_reference(fm, sample_weight, should_stop)
        # the reference rows' own k-distance and density, each leaving itself out
        self.k_distance_ = np.zeros(self.reference_.shape[0])
        dist, idx = self._neighbors(self.reference_)
        self.k_distance_ = dist[:, -1].copy()
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        self.lrd_ = self._lrd(dist, idx)
        if progress:
            progress(1.0, f"LOF fitted ({self.reference_.shape[0]} reference rows)")
        return self

    def _lrd(self, dist: np.ndarray, idx: np.ndarray) -> np.ndarray:
        reach = np.maximum(dist, self.k_distance_[idx])
        return 1.0 / (reach.mean(axis=1) + 1e-10)

    def decision_function(self, fm) -> np.ndarray:
        dist, idx = self._neighbors(self._matrix(fm))
        return self.lrd_[idx].mean(axis=1) / self._lrd(dist, idx)

    def get_state(self):
        meta, arrays = self._base_state()
        arrays.update(k_distance=self.k_distance_, lrd=self.lrd_)
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        det = cls._base_from_state(meta, arrays)
        det.k_distance_ = np.asarray(arrays["k_distance"], dtype=np.float64)
        det.lrd_ = np.asarray(arrays["lrd"], dtype=np.float64)
        m = det.reference_.shape[0]
        if det.k_distance_.shape != (m,) or det.lrd_.shape != (m,):
            raise AnomalyDeskError("lof: the density arrays do not match the reference rows")
        return det
