"""Detector views for the re-ranker: the scores of the ensemble's members and of a few cheap detectors
not in it (isolation forest, ECOD, PCA, k nearest neighbours, LOF), computed once per file, so the verdicts
can choose the detector that ranks them best. The best single detector per file is well above the
ensemble on average, but which one is unknown until the analyst has confirmed a few records."""

from __future__ import annotations

import numpy as np

from engine.features import FeatureMatrix

#: cheap detectors added as views when they are not already members (``knn`` is the mean distance to
#: the k nearest of a sample of reference rows, see ``_knn_distance``)
EXTRA_VIEWS: tuple[str, ...] = ("iforest", "ecod", "pca", "knn", "lof")


def robust_z(x: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 MAD), the standard deviation when the MAD is 0: the one robust scale of the
    re-ranker's scores and views."""
    x = np.asarray(x, dtype=np.float64)
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    if not mad > 0:
        mad = float(np.std(x)) or 1.0
    return (x - med) / mad


def robust_z32(x: np.ndarray, clip: tuple[float, float] = (-5.0, 20.0)) -> np.ndarray:
    """``robust_z`` of the finite values, clipped, float32: views on one scale so they can be mixed."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(robust_z(x), *clip).astype(np.float32)


def _knn_distance(X: np.ndarray, *, k: int = 10, n_ref: int = 1000, seed: int = 0,
                  chunk: int = 20_000) -> np.ndarray:
    """Mean Euclidean distance of every row to its ``k`` nearest rows of a random reference sample
    (the reference rows themselves skip their zero self-distance). A sample keeps it linear in the rows."""
    rng = np.random.default_rng(seed)
    n = len(X)
    ref_idx = rng.choice(n, size=min(n, n_ref), replace=False)
    R = np.ascontiguousarray(X[ref_idx], dtype=np.float32)
    r2 = (R * R).sum(axis=1)
    kk = min(k + 1, len(R))
    out = np.empty(n, dtype=np.float64)
    is_ref = np.zeros(n, dtype=bool)
    is_ref[ref_idx] = True
    for s in range(0, n, chunk):
        Q = np.ascontiguousarray(X[s:s + chunk], dtype=np.float32)
        d2 = (Q * Q).sum(axis=1)[:, None] + r2[None, :] - 2.0 * (Q @ R.T)
        np.maximum(d2, 0.0, out=d2)
        near = np.sort(np.partition(d2, kk - 1, axis=1)[:, :kk], axis=1)
        d = np.sqrt(near)
        own = is_ref[s:s + chunk]
        # reference rows drop their first (self, 0) distance; the others drop their (k+1)-th
        out[s:s + chunk] = np.where(own, d[:, 1:].mean(axis=1) if kk > 1 else 0.0,
                                    d[:, : kk - 1].mean(axis=1) if kk > 1 else d[:, 0])
    return out


def _project(X: np.ndarray, sample: np.ndarray, k: int) -> np.ndarray:
    """``X`` centred and projected on the ``k`` leading principal directions of ``sample``, float32."""
    mean = sample.mean(axis=0)
    _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
    return ((X - mean) @ vt[:k].T).astype(np.float32)


def detector_views(X: np.ndarray, members: dict[str, np.ndarray] | None, *, extra=EXTRA_VIEWS,
                   fit_rows: int = 20_000, seed: int = 0, skip=(), max_cells: int = 20_000_000,
                   project_to: int = 32) -> tuple[list[str], np.ndarray | None]:
    """Names and (n, m) float32 robust-z scores of the views: the ensemble's members (when it has more
    than one) and each detector of ``extra`` not among them nor in ``skip`` (the detector itself),
    fitted on at most ``fit_rows`` rows. Past ``max_cells`` values (rows x encoded columns) the extra
    views see the rows projected on their ``project_to`` leading principal components, which keeps the
    preparation of a 500k-row one-hot ledger within seconds."""
    from engine.detectors import make_detector

    names: list[str] = []
    cols: list[np.ndarray] = []
    members = members or {}
    if len(members) > 1:
        for name, s in members.items():
            names.append(str(name))
            cols.append(robust_z32(s))
    X = np.nan_to_num(np.asarray(X, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    n = len(X)
    rng = np.random.default_rng(seed)
    fit_idx = np.sort(rng.choice(n, size=fit_rows, replace=False)) if n > fit_rows else slice(None)
    if X.size > max_cells and X.shape[1] > project_to:
        X = _project(X, X[fit_idx][:5000], project_to)
    for name in extra:
        if name in names or name in members or name in skip:
            continue
        if name in ("ecod", "lof") and n > 200_000:  # each would take most of a 500k-row preparation's 20 s
            continue
        if name == "knn":
            s = _knn_distance(X, seed=seed, n_ref=1000 if n <= 100_000 else 256)
        else:
            det = make_detector(name, seed=seed)
            det.fit(FeatureMatrix(X[fit_idx]))  # a plain matrix: every column numeric
            s = det.decision_function(FeatureMatrix(X))
        if np.std(s) > 0:
            names.append(name)
            cols.append(robust_z32(s))
    if not cols:
        return [], None
    return names, np.column_stack(cols)


def auc_on_labelled(V: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUCROC of each column of ``V`` (rows = the labelled records) against ``y`` (True = anomaly), ties
    counted half: how well each view ranks the verdicts."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return np.full(V.shape[1], 0.5)
    ranks = rankdata(V, axis=0)
    return (ranks[y].sum(axis=0) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def view_weights(auc: np.ndarray, n_pos: int, n_neg: int, *, evidence: float, sharpness: float) -> np.ndarray:
    """Mixing weights over the views, column 0 being the detector's own score (the prior): a share
    ``m / (m + evidence)`` (``m`` the smaller verdict class) goes to a softmax of the views' AUC on the
    verdicts with ``sharpness``, the rest stays on column 0. So one or two verdicts move little, and a
    clear lead on many verdicts takes over."""
    m = float(min(n_pos, n_neg))
    trust = m / (m + evidence)
    logits = sharpness * np.asarray(auc, dtype=np.float64)
    logits -= logits.max()
    soft = np.exp(logits)
    w = trust * soft / soft.sum()
    w[0] += 1.0 - trust
    return w
