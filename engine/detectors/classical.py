"""Classical detectors: isolation forest, one-class SVM, PCA reconstruction, ECOD.

All of them score in numpy from arrays they keep, so a saved model (JSON metadata + arrays, never
pickle) scores exactly as the fitted one. scikit-learn fits the isolation forest and the SVM; their
fitted trees / support vectors are exported to arrays and scored here.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from engine.detectors.base import Detector, Explained, column_shares, encoded_values, shares_of_columns
from engine.errors import TRAINING_CANCELLED, AnomalyDeskError, stop_if_asked

_EULER = 0.5772156649015329


def checked_weights(sample_weight, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if w.shape[0] != n:
        raise AnomalyDeskError(f"sample_weight has {w.shape[0]} values for {n} rows")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise AnomalyDeskError("sample_weight must be finite and >= 0")
    if w.sum() <= 0:
        raise AnomalyDeskError("sample_weight is 0 for every row: nothing left to learn as normal")
    return w


def weighted_rows(x: np.ndarray, w: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Rows to fit on for methods without native weights: weight 0 drops a row; unequal weights
    resample the kept rows (with replacement) in proportion to their weight."""
    if w is None:
        return x
    keep = np.flatnonzero(w > 0)
    wk = w[keep]
    if np.allclose(wk, wk[0]):
        return x[keep]
    idx = rng.choice(keep, size=keep.size, replace=True, p=wk / wk.sum())
    return x[np.sort(idx)]


def unlogged_values(fm) -> np.ndarray:
    """The encoded matrix (float64) with the numeric block's log transform undone
    (``FeatureMatrix.linear_numeric``), for methods that should see the original spacing of values."""
    x = encoded_values(fm)
    if getattr(fm, "numeric_log", None) is not None:
        lin = fm.linear_numeric()
        x = x.copy()
        x[:, : lin.shape[1]] = np.nan_to_num(lin, nan=0.0, posinf=0.0, neginf=0.0)
    return x


def fitted_input(det: Detector, fm, matrix=encoded_values) -> np.ndarray:
    """The matrix a fitted detector scores, refused when its width is not the one it was fitted on."""
    det._check_fitted()
    x = matrix(fm)
    if x.shape[1] != det.n_features_in_:
        raise AnomalyDeskError(
            f"{det.name}: the data has {x.shape[1]} encoded features, the model was fitted on {det.n_features_in_}")
    return x


def _set_arrays(det: Detector, arrays, dtypes: dict) -> None:
    """Saved arrays onto a detector being loaded: ``name`` becomes ``det.name_`` in its dtype."""
    for name, dtype in dtypes.items():
        setattr(det, name + "_", np.asarray(arrays[name], dtype=dtype))


# ---------------------------------------------------------------------------------------------
def _average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): average path length of an unsuccessful binary-search-tree search (Liu et al. 2008)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class IsolationForestDetector(Detector):
    """Isolation forest (scikit-learn fits the trees; they are kept as arrays and walked in numpy).

    Score: ``2 ** (-mean path length / c(max_samples))`` as in scikit-learn (higher = more anomalous).

    Contributions (an approximation, documented): along a row's path each split on feature ``f``
    shrinks the row's node from ``n_parent`` to ``n_child`` training samples; ``f`` is credited with
    ``log(n_parent / n_child)``, the isolation that split achieved. The credits along one path add
    up to ``log(n_root / n_leaf)``, so the features that isolate a row in few, decisive splits get
    the largest shares. This avoids the TreeSHAP-on-path-length pitfall (where the *negative*
    attributions drive the anomaly): every credit here is positive and points at the anomaly.

    Features (``undo_log``, default on): the trees see numeric columns *without* the preprocessing's
    log transform (``FeatureMatrix.linear_numeric``). A split is drawn uniformly over a feature's
    range, and the log squeezes exactly the long right tail where the outliers lie, so fewer splits
    land there. Measured (issue 3, six ADBench files, seeds 0/1, AUCROC x100): 91.84 with the logged
    features, 92.49 without (cardio 91.65 -> 93.47, mammography 84.06 -> 86.12, the others within
    0.2), the published IForest (raw features) being 92.4.
    """

    name: ClassVar[str] = "iforest"

    def __init__(self, n_estimators: int = 100, max_samples: int | float | str = "auto",
                 max_features: float = 1.0, undo_log: bool = True, seed: int = 0):
        self.n_estimators, self.max_samples, self.max_features, self.seed = (
            n_estimators, max_samples, max_features, seed)
        self.undo_log = undo_log

    def _matrix(self, fm) -> np.ndarray:
        return (unlogged_values(fm) if self.undo_log else encoded_values(fm)).astype(np.float32)

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        from sklearn.ensemble import IsolationForest

        x = self._matrix(fm)
        w = checked_weights(sample_weight, x.shape[0])
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        rng = np.random.default_rng(self.seed)
        x_fit = weighted_rows(x, w, rng)
        forest = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                 max_features=self.max_features, random_state=self.seed).fit(x_fit)
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        lefts, rights, feats, thrs, counts, offsets = [], [], [], [], [], [0]
        subsample = forest._max_features != x_fit.shape[1]
        for tree, features in zip(forest.estimators_, forest.estimators_features_, strict=True):
            t = tree.tree_
            f = t.feature.astype(np.int64)
            if subsample:  # tree features index the tree's feature subset
                f = np.where(f >= 0, np.asarray(features)[np.maximum(f, 0)], -1)
            lefts.append(t.children_left.astype(np.int64))
            rights.append(t.children_right.astype(np.int64))
            feats.append(f)
            thrs.append(t.threshold.astype(np.float64))
            counts.append(t.n_node_samples.astype(np.int64))
            offsets.append(offsets[-1] + t.node_count)
        self.children_left_ = np.concatenate(lefts)
        self.children_right_ = np.concatenate(rights)
        self.feature_ = np.concatenate(feats)
        self.threshold_ = np.concatenate(thrs)
        self.node_samples_ = np.concatenate(counts)
        self.tree_offsets_ = np.asarray(offsets, dtype=np.int64)
        self.max_samples_ = int(forest.max_samples_)
        self.n_features_in_ = x.shape[1]
        if progress:
            progress(1.0, "isolation forest fitted")
        return self

    def _walk(self, fm, with_contrib: bool):
        x = fitted_input(self, fm, self._matrix)
        n = x.shape[0]
        depth_sum = np.zeros(n)
        contrib = np.zeros((n, x.shape[1])) if with_contrib else None
        log_counts = np.log(self.node_samples_.astype(np.float64))
        rows_all = np.arange(n)
        for t in range(len(self.tree_offsets_) - 1):
            base = self.tree_offsets_[t]
            node = np.full(n, base, dtype=np.int64)
            depth = np.zeros(n)
            active = rows_all
            while active.size:
                nd = node[active]
                leaf = self.children_left_[nd] < 0
                if leaf.any():
                    active, nd = active[~leaf], nd[~leaf]
                    if not active.size:
                        break
                f = self.feature_[nd]
                go_left = x[active, f] <= self.threshold_[nd]
                child = base + np.where(go_left, self.children_left_[nd], self.children_right_[nd])
                if with_contrib:
                    contrib[active, f] += log_counts[nd] - log_counts[child]
                node[active] = child
                depth[active] += 1.0
            depth_sum += depth + _average_path_length(self.node_samples_[node])
        n_trees = len(self.tree_offsets_) - 1
        denom = n_trees * float(_average_path_length(np.asarray([self.max_samples_]))[0])
        scores = np.ones(n) if denom == 0 else 2.0 ** (-depth_sum / denom)
        return scores, contrib

    def decision_function(self, fm) -> np.ndarray:
        return self._walk(fm, with_contrib=False)[0]

    def feature_contributions(self, fm) -> np.ndarray:
        return column_shares(self._walk(fm, with_contrib=True)[1], fm)

    def score_and_explain(self, fm, expected: bool = True) -> Explained:
        scores, contrib = self._walk(fm, with_contrib=True)  # one walk gives both
        return Explained(scores=scores, contributions=column_shares(contrib, fm))

    def get_state(self):
        self._check_fitted()
        meta = {"params": self.get_params(), "max_samples_": self.max_samples_,
                "n_features_in_": self.n_features_in_}
        arrays = {"children_left": self.children_left_, "children_right": self.children_right_,
                  "feature": self.feature_, "threshold": self.threshold_,
                  "node_samples": self.node_samples_, "tree_offsets": self.tree_offsets_}
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        params = dict(meta["params"])
        params.setdefault("undo_log", False)  # models saved before undo_log saw the logged features
        det = cls(**params)
        _set_arrays(det, arrays, {"children_left": np.int64, "children_right": np.int64, "feature": np.int64,
                                  "threshold": np.float64, "node_samples": np.int64, "tree_offsets": np.int64})
        det.max_samples_ = int(meta["max_samples_"])
        det.n_features_in_ = int(meta["n_features_in_"])
        total = int(det.tree_offsets_[-1]) if det.tree_offsets_.size else -1
        sizes = {a.shape[0] for a in (det.children_left_, det.children_right_, det.feature_,
                                      det.threshold_, det.node_samples_)}
        if sizes != {total} or np.any(np.diff(det.tree_offsets_) <= 0):
            raise AnomalyDeskError("isolation forest arrays do not agree with each other")
        internal = det.children_left_ >= 0
        if (np.any(det.feature_[internal] >= det.n_features_in_) or np.any(det.feature_[internal] < 0)
                or np.any(det.children_left_ >= total) or np.any(det.children_right_ >= total)):
            raise AnomalyDeskError("isolation forest arrays point outside the model")
        return det


# ---------------------------------------------------------------------------------------------
class OCSVMDetector(Detector):
    """One-class SVM with an RBF kernel (scikit-learn fits it on at most ``max_train_rows`` rows).

    Score: minus the decision function, ``-(sum_i a_i exp(-gamma |x - sv_i|^2) + b)``, evaluated in
    numpy from the support vectors, dual coefficients, intercept and gamma.

    Contributions (approximation): ``-log k(x, sv) = gamma * sum_j (x_j - sv_j)^2`` splits exactly by
    feature for one support vector; the row's shares are those squared differences averaged over
    the support vectors weighted by ``a_i k(x, sv_i)`` (the vectors that shape its score).
    """

    name: ClassVar[str] = "ocsvm"

    def __init__(self, nu: float = 0.5, gamma: float | str = "scale", max_train_rows: int = 5000,
                 seed: int = 0):
        self.nu, self.gamma, self.max_train_rows, self.seed = nu, gamma, max_train_rows, seed

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        from sklearn.svm import OneClassSVM

        x = encoded_values(fm)
        w = checked_weights(sample_weight, x.shape[0])
        rng = np.random.default_rng(self.seed)
        keep = np.arange(x.shape[0]) if w is None else np.flatnonzero(w > 0)
        if keep.size > self.max_train_rows:
            p = None if w is None else w[keep] / w[keep].sum()
            keep = np.sort(rng.choice(keep, size=self.max_train_rows, replace=False, p=p))
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        svm = OneClassSVM(kernel="rbf", nu=self.nu, gamma=self.gamma)
        svm.fit(x[keep], sample_weight=None if w is None else w[keep])
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        self.support_vectors_ = np.asarray(svm.support_vectors_, dtype=np.float64)
        self.dual_coef_ = np.asarray(svm.dual_coef_, dtype=np.float64).reshape(-1)
        self.intercept_ = float(np.asarray(svm.intercept_).reshape(-1)[0])
        self.gamma_ = float(svm._gamma)
        self.n_features_in_ = x.shape[1]
        if progress:
            progress(1.0, "one-class SVM fitted")
        return self

    def _sq_dist(self, xb: np.ndarray) -> np.ndarray:
        sv = self.support_vectors_
        d = (xb ** 2).sum(1)[:, None] + (sv ** 2).sum(1)[None, :] - 2.0 * xb @ sv.T
        return np.maximum(d, 0.0)

    def _chunks(self, x: np.ndarray, size: int = 4096):
        for start in range(0, x.shape[0], size):
            yield start, x[start:start + size]

    def decision_function(self, fm) -> np.ndarray:
        x = fitted_input(self, fm)
        out = np.empty(x.shape[0])
        for start, xb in self._chunks(x):
            k = np.exp(-self.gamma_ * self._sq_dist(xb))
            out[start:start + xb.shape[0]] = -(k @ self.dual_coef_ + self.intercept_)
        return out

    def feature_contributions(self, fm) -> np.ndarray:
        x = fitted_input(self, fm)
        sv = self.support_vectors_
        per_feature = np.empty_like(x)
        log_a = np.log(np.maximum(self.dual_coef_, 1e-300))
        for start, xb in self._chunks(x, 1024):
            logits = log_a[None, :] - self.gamma_ * self._sq_dist(xb)
            logits -= logits.max(axis=1, keepdims=True)
            weight = np.exp(logits)
            weight /= weight.sum(axis=1, keepdims=True)
            # sum_i w_i (x_j - sv_ij)^2 = x_j^2 - 2 x_j (W sv)_j + (W sv^2)_j
            per_feature[start:start + xb.shape[0]] = (
                xb ** 2 - 2.0 * xb * (weight @ sv) + weight @ (sv ** 2))
        return column_shares(per_feature, fm)

    def get_state(self):
        self._check_fitted()
        meta = {"params": self.get_params(), "intercept_": self.intercept_, "gamma_": self.gamma_,
                "n_features_in_": self.n_features_in_}
        return meta, {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_}

    @classmethod
    def from_state(cls, meta, arrays):
        det = cls(**meta["params"])
        det.support_vectors_ = np.asarray(arrays["support_vectors"], dtype=np.float64)
        det.dual_coef_ = np.asarray(arrays["dual_coef"], dtype=np.float64).reshape(-1)
        det.intercept_ = float(meta["intercept_"])
        det.gamma_ = float(meta["gamma_"])
        det.n_features_in_ = int(meta["n_features_in_"])
        if (det.support_vectors_.ndim != 2 or det.support_vectors_.shape[1] != det.n_features_in_
                or det.support_vectors_.shape[0] != det.dual_coef_.shape[0]):
            raise AnomalyDeskError("one-class SVM arrays do not agree with each other")
        return det


# ---------------------------------------------------------------------------------------------
class PCADetector(Detector):
    """PCA on standardised features, scored by the distance in the whitened principal space.

    Score: ``sum_k (z . v_k)^2 / lambda_k`` over all principal components (the Mahalanobis distance,
    as PyOD's weighted PCA): a row that is unusual along a low-variance direction (a broken
    correlation) counts as much as one that is extreme along a high-variance one, and a handful of
    outliers that claim a component of their own are still far out along it. Eigenvalues are floored
    at ``floor`` x the largest so constant directions do not explode.

    Contributions: the score is the quadratic form ``z' P z`` with ``P = V diag(1/lambda) V'``; its
    exact additive split over features is ``z_j (P z)_j``. Negative terms (a feature that makes the
    row *less* unusual given the others) are clipped to 0 before the shares are taken.
    Expected values: the reconstruction from the leading components that explain ``variance``.
    """

    name: ClassVar[str] = "pca"

    def __init__(self, variance: float = 0.9, floor: float = 1e-6, standardize: bool = True, seed: int = 0):
        self.variance, self.floor, self.standardize, self.seed = variance, floor, standardize, seed

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        x = encoded_values(fm)
        n, d = x.shape
        w = checked_weights(sample_weight, n)
        w = np.ones(n) if w is None else w
        w = w / w.sum()
        mean = w @ x
        xc = x - mean
        std = np.sqrt(w @ (xc ** 2)) if self.standardize else np.ones(d)
        std = np.where(std > 1e-9, std, 1.0)
        z = xc / std * np.sqrt(w)[:, None]
        stop_if_asked(should_stop, TRAINING_CANCELLED)
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        var = s ** 2
        top = float(var.max()) if var.size else 1.0
        ratio = np.cumsum(var) / max(var.sum(), 1e-300)
        k = int(min(np.searchsorted(ratio, self.variance) + 1, vt.shape[0]))
        self.mean_, self.scale_ = mean, std
        self.components_ = vt.copy()
        self.explained_variance_ = np.maximum(var, self.floor * max(top, 1e-12))
        self.n_leading_ = k
        self.n_features_in_ = d
        if progress:
            progress(1.0, f"PCA fitted ({vt.shape[0]} components)")
        return self

    def _z(self, fm) -> np.ndarray:
        x = fitted_input(self, fm)
        return (x - self.mean_) / self.scale_

    def decision_function(self, fm) -> np.ndarray:
        return self._score_from(self._z(fm))

    def _score_from(self, z: np.ndarray) -> np.ndarray:
        proj = z @ self.components_.T
        return (proj ** 2 / self.explained_variance_).sum(axis=1)

    def feature_contributions(self, fm) -> np.ndarray:
        return self._contributions_from(self._z(fm), fm)

    def _contributions_from(self, z: np.ndarray, fm) -> np.ndarray:
        pz = ((z @ self.components_.T) / self.explained_variance_) @ self.components_
        return column_shares(np.clip(z * pz, 0.0, None), fm)

    def expected_values(self, fm) -> np.ndarray:
        return self._expected_from(self._z(fm))

    def _expected_from(self, z: np.ndarray) -> np.ndarray:
        lead = self.components_[: self.n_leading_]
        recon = (z @ lead.T) @ lead
        return recon * self.scale_ + self.mean_

    def score_and_explain(self, fm, expected: bool = True) -> Explained:
        z = self._z(fm)  # standardised once for all three
        return Explained(scores=self._score_from(z), contributions=self._contributions_from(z, fm),
                         expected=self._expected_from(z) if expected else None)

    def get_state(self):
        self._check_fitted()
        return ({"params": self.get_params(), "n_features_in_": self.n_features_in_, "n_leading_": self.n_leading_},
                {"mean": self.mean_, "scale": self.scale_, "components": self.components_,
                 "explained_variance": self.explained_variance_})

    @classmethod
    def from_state(cls, meta, arrays):
        det = cls(**meta["params"])
        det.n_features_in_ = int(meta["n_features_in_"])
        det.n_leading_ = int(meta["n_leading_"])
        det.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        det.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        det.components_ = np.asarray(arrays["components"], dtype=np.float64)
        det.explained_variance_ = np.asarray(arrays["explained_variance"], dtype=np.float64)
        d = det.n_features_in_
        if (det.mean_.shape != (d,) or det.scale_.shape != (d,) or det.components_.ndim != 2
                or det.components_.shape[1] != d or det.explained_variance_.shape != (det.components_.shape[0],)
                or not 0 <= det.n_leading_ <= det.components_.shape[0] or np.any(det.explained_variance_ <= 0)):
            raise AnomalyDeskError("PCA arrays do not agree with each other")
        return det


# ---------------------------------------------------------------------------------------------
class ECODDetector(Detector):
    """ECOD (Li et al. 2022): empirical-CDF tail probabilities per feature, summed.

    For each feature: left tail ``-log P(X <= x)`` and right tail ``-log P(X >= x)``. With
    ``tails="both"`` (the default, as PyOD's ECOD computes it) the feature's outlyingness is the
    larger of the two: a value far out in either tail counts in full. With ``tails="skew"`` (the
    rule before issue 3) it is the larger of the tail the feature's skewness points to and the mean
    of both tails, which halves a value far out in the short tail. The row's score is the sum over
    features (so contributions are exact). Measured (issue 3, six ADBench files, AUCROC x100):
    "both" 92.13 against "skew" 90.73 (cardio 93.52/92.17, thyroid 97.72/93.89, pendigits
    92.75/90.48, annthyroid 78.88/77.60, mammography 90.62/90.54, shuttle 99.30/99.69); published
    ECOD 91.94 on the same files. The empirical CDFs come from the (weighted) training data only, smoothed by one count so
    values beyond the training range stay finite. A one-hot column's rare level gets a large
    right-tail term: rare categories surface.
    """

    name: ClassVar[str] = "ecod"

    def __init__(self, tails: str = "both", seed: int = 0):
        if tails not in ("both", "skew"):
            raise AnomalyDeskError(f"ecod: tails must be 'both' or 'skew', not {tails!r}")
        self.tails, self.seed = tails, seed

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        x = encoded_values(fm)
        n, d = x.shape
        w = checked_weights(sample_weight, n)
        w = np.ones(n) if w is None else w
        values, cumw, offsets, skew_sign = [], [], [0], np.zeros(d)
        total = float(w.sum())
        for j in range(d):
            if j % 64 == 0:
                stop_if_asked(should_stop, TRAINING_CANCELLED)
            col = x[:, j]
            uniq, inv = np.unique(col, return_inverse=True)
            cw = np.cumsum(np.bincount(inv, weights=w, minlength=uniq.size))
            values.append(uniq)
            cumw.append(cw)
            offsets.append(offsets[-1] + uniq.size)
            mu = (w @ col) / total
            var = (w @ (col - mu) ** 2) / total
            m3 = (w @ (col - mu) ** 3) / total
            skew_sign[j] = np.sign(m3 / var ** 1.5) if var > 0 else 0.0
        self.values_ = np.concatenate(values) if values else np.zeros(0)
        self.cum_weight_ = np.concatenate(cumw) if cumw else np.zeros(0)
        self.offsets_ = np.asarray(offsets, dtype=np.int64)
        self.skew_sign_ = skew_sign
        self.total_weight_ = total
        self.n_features_in_ = d
        if progress:
            progress(1.0, "ECOD fitted")
        return self

    def _tails(self, j: int, col: np.ndarray) -> np.ndarray:
        """Feature ``j``'s outlyingness at the values ``col`` (float64)."""
        total = self.total_weight_
        lo, hi = self.offsets_[j], self.offsets_[j + 1]
        vals, cw = self.values_[lo:hi], self.cum_weight_[lo:hi]
        cw0 = np.concatenate([[0.0], cw])
        le = cw0[np.searchsorted(vals, col, side="right")]  # weight of training values <= x
        lt = cw0[np.searchsorted(vals, col, side="left")]  # weight of training values < x
        u_left = -np.log((le + 1.0) / (total + 1.0))
        u_right = -np.log((total - lt + 1.0) / (total + 1.0))
        if self.tails == "both":
            return np.maximum(u_left, u_right)
        s = self.skew_sign_[j]
        u_skew = u_left * -np.sign(s - 1) + u_right * np.sign(s + 1)
        return np.maximum(u_skew, (u_left + u_right) / 2.0)

    def _column_outlyingness(self, fm) -> np.ndarray:
        """(n, n_source_columns): the features' outlyingness summed per original column. A one-hot
        feature takes only the values 0 and 1, so its two outlyingness values are looked up once per
        model and a categorical column's sum is a gather by the row's code: no one-hot matrix and one
        search per numeric feature, not per one-hot feature (the same sums as over ``fm.values``)."""
        self._check_fitted()
        if fm.n_features != self.n_features_in_:
            raise AnomalyDeskError(f"{self.name}: the data has {fm.n_features} encoded features, the model was "
                                   f"fitted on {self.n_features_in_}")
        out = np.zeros((fm.n_rows, len(fm.source_columns)), dtype=np.float64)
        x = np.nan_to_num(fm.numeric.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        for j in range(x.shape[1]):
            out[:, fm.numeric_source[j]] += self._tails(j, x[:, j])
        if fm.codes.shape[1]:
            at_zero, step = self._onehot_tables(fm)
            for i, (start, src) in enumerate(zip(self._block_starts(fm), fm.categorical_source, strict=True)):
                k = fm.cardinalities[i]
                out[:, src] += at_zero[start: start + k].sum() + step[start + fm.codes[:, i]]
        return out

    @staticmethod
    def _block_starts(fm) -> np.ndarray:
        return fm.numeric.shape[1] + np.concatenate([[0], np.cumsum(fm.cardinalities)[:-1]]).astype(np.int64)

    def _onehot_tables(self, fm) -> tuple[np.ndarray, np.ndarray]:
        """Per encoded feature: its outlyingness at 0, and the change from 0 to 1 (cached per model)."""
        cached = getattr(self, "_onehot_cache", None)
        if cached is None:
            d = self.n_features_in_
            at = np.zeros((d, 2))
            for j in range(fm.numeric.shape[1], d):
                at[j] = self._tails(j, np.array([0.0, 1.0]))
            cached = self._onehot_cache = (at[:, 0].copy(), at[:, 1] - at[:, 0])
        return cached

    def decision_function(self, fm) -> np.ndarray:
        return self._column_outlyingness(fm).sum(axis=1)

    def feature_contributions(self, fm) -> np.ndarray:
        return shares_of_columns(self._column_outlyingness(fm))

    def score_and_explain(self, fm, expected: bool = True) -> Explained:
        cols = self._column_outlyingness(fm)
        return Explained(scores=cols.sum(axis=1), contributions=shares_of_columns(cols))

    def get_state(self):
        self._check_fitted()
        return ({"params": self.get_params(), "total_weight_": self.total_weight_,
                 "n_features_in_": self.n_features_in_},
                {"values": self.values_, "cum_weight": self.cum_weight_, "offsets": self.offsets_,
                 "skew_sign": self.skew_sign_})

    @classmethod
    def from_state(cls, meta, arrays):
        params = dict(meta["params"])
        params.setdefault("tails", "skew")  # models saved before the tails parameter used the skew rule
        det = cls(**params)
        _set_arrays(det, arrays, {"values": np.float64, "cum_weight": np.float64, "offsets": np.int64,
                                  "skew_sign": np.float64})
        det.total_weight_ = float(meta["total_weight_"])
        det.n_features_in_ = int(meta["n_features_in_"])
        d = det.n_features_in_
        if (det.offsets_.shape != (d + 1,) or det.skew_sign_.shape != (d,)
                or det.values_.shape != det.cum_weight_.shape or det.offsets_[0] != 0
                or det.offsets_[-1] != det.values_.shape[0] or np.any(np.diff(det.offsets_) < 0)):
            raise AnomalyDeskError("ECOD arrays do not agree with each other")
        return det
