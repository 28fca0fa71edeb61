"""Retraining with verdicts: a light re-ranker over the detector's scores (regions of an isolation
forest and a column-rarity profile, weighted by a ridge-penalised logistic model on the reviewed
rows), so records like confirmed anomalies rise and records like confirmed normals sink. The
figures behind each setting are in docs/decisions.md."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import AnomalyDeskError, Cancelled
from engine.schema import Role, Schema
from engine.scoring.severity import severity as severity_of

if TYPE_CHECKING:
    import pandas as pd

ProgressCallback = Callable[..., None]
StopCallback = Callable[[], bool]

#: Re-ranker settings, chosen by measurement over the benchmark files (benchmarks/bench_feedback.py).
RERANK_DEFAULTS: dict[str, Any] = {
    "n_trees": 100,  # trees of the region forest whose nodes carry the learnt weights
    "levels": (None,),  # which node of each tree a row contributes: None = its leaf, k = its depth-k ancestor
    "prior": 1.0,  # weight of the detector's own (robust-standardised) score in the learnt score
    "l2": 1.0,  # ridge penalty on node weights: how far verdicts may move a region
    "views": False,  # also learn weights for extra unsupervised scores (ensemble members, pair rarity)
    "l2_views": 1.0,  # ridge penalty on those weights
    "pair_prior": 0.0,  # fixed weight of the categorical pair-rarity view in the ranking (0 = learnt only)
    "profile": True,  # learn weights for per-column / per-pair rarity features (``_column_profile``)
    "profile_contributions": True,  # add the detector's per-column share of each row's score to the profile
    "profile_nonneg": True,  # profile weights may only raise scores (rarity never makes a record more normal)
    "l2_profile": 0.1,  # ridge penalty on those weights (0.03 and 1.0 measured worse; 0.03 unstable on cardio)
}


@dataclass
class FeedbackState:
    """What one retrain leaves for the next (pass ``FeedbackResult.state`` back as ``state=``).
    Opaque to callers; valid only for the same frame."""

    fingerprint: str  # the frame's
    model_token: tuple  # which fitted detector the base scores came from
    base_scores: np.ndarray  # the detector's own scores, higher = more anomalous
    base_z: np.ndarray  # the same, robust-standardised (median 0, MAD 1)
    nodes: np.ndarray  # (n_rows, k) int32: ids of the forest regions each row falls in
    n_nodes: int
    base_excluded: frozenset[int]  # rows left out of the detector's last fit (confirmed anomalies)
    base_fit_seconds: float
    params: dict[str, Any]
    node_weights: np.ndarray | None = None
    views: np.ndarray | None = None  # (n_rows, n_views) extra unsupervised scores, robust z
    view_weights: np.ndarray | None = None
    pair_view_index: int | None = None  # column of ``views`` holding the pair rarity, if any
    rounds: int = 0
    profile: np.ndarray | None = None  # (n_rows, k) per-column / per-pair rarity (``_column_profile``)
    profile_weights: np.ndarray | None = None


@dataclass
class FeedbackResult:
    scores: np.ndarray  # (n,) higher = more anomalous: the ranking to review next
    severity: np.ndarray  # (n,) 0..100, percentile of the score among all rows
    model: Any  # the AnomalyModel (refitted when ``refitted``)
    threshold: float  # recalibrated threshold on ``scores``
    threshold_explanation: str
    seconds: float  # wall time of this retrain
    refitted: bool  # whether the detector itself was refitted this time
    n_anomalies: int  # verdicts used
    n_normals: int
    state: FeedbackState
    base_scores: np.ndarray = field(repr=False, default=None)  # the detector's scores before re-ranking


def _fingerprint(frame: pd.DataFrame) -> str:
    import pandas as pd

    head = pd.util.hash_pandas_object(frame.iloc[:: max(1, len(frame) // 64)], index=False).to_numpy()
    return f"{len(frame)}:{'|'.join(map(str, frame.columns))}:{int(head.sum()) & 0xFFFFFFFFFFFF:x}"


def _robust_z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    if not mad > 0:
        mad = np.std(x) or 1.0
    return (x - med) / mad


def _ancestor_at_depth(children_left: np.ndarray, children_right: np.ndarray, depth: np.ndarray,
                       level: int) -> np.ndarray:
    """For each node its ancestor at ``level`` (itself when it is shallower)."""
    n = len(depth)
    parent = np.full(n, -1)
    for c in (children_left, children_right):
        has = c >= 0
        parent[c[has]] = np.nonzero(has)[0]
    anc = np.arange(n)
    for _ in range(int(depth.max())):
        deeper = depth[anc] > level
        if not deeper.any():
            break
        anc[deeper] = parent[anc[deeper]]
    return anc


def _region_embedding(X: np.ndarray, *, exclude: np.ndarray, n_trees: int, levels, seed: int):
    """Fit an isolation forest on the rows not excluded and return, per row, the ids of the tree
    regions (leaf or ancestor nodes) it falls in: (n, n_trees * len(levels)) int32, and the id count."""
    from sklearn.ensemble import IsolationForest

    train = X[~exclude] if exclude.any() and (~exclude).sum() >= 16 else X
    forest = IsolationForest(n_estimators=n_trees, max_samples=min(256, len(train)),
                             random_state=seed).fit(train)
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    cols, offset = [], 0
    for est, feats in zip(forest.estimators_, forest.estimators_features_, strict=True):
        tree = est.tree_
        leaf = est.apply(X32[:, feats])
        depth = tree.compute_node_depths() - 1  # root at depth 0
        for level in levels:
            node = leaf if level is None else _ancestor_at_depth(
                tree.children_left, tree.children_right, depth, int(level))[leaf]
            cols.append(node.astype(np.int64) + offset)
        offset += tree.node_count
    return np.stack(cols, axis=1).astype(np.int32), offset


def _learn_node_weights(nodes: np.ndarray, n_nodes: int, base_z: np.ndarray, idx: np.ndarray,
                        y: np.ndarray, prior: float, l2: float, views: np.ndarray | None = None,
                        l2_views: float = 1.0, nonneg_from: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Logistic loss on the labelled rows with the detector's score as a fixed offset, one free
    weight per forest region (ridge-penalised) and, when ``views`` are given, one weight per extra
    unsupervised score (XGBOD-like). A confirmed anomaly lifts the regions it shares with other
    records, a confirmed normal lowers them (the active-anomaly-discovery idea, as a regularised
    logistic model rather than AAD's hinge). Returns (node weights, view weights or None)."""
    from scipy.optimize import minimize
    from scipy.sparse import csr_matrix, hstack
    from scipy.special import expit

    sub = nodes[idx]
    m, k = sub.shape
    touched, inv = np.unique(sub, return_inverse=True)
    Z = csr_matrix((np.ones(m * k), inv.ravel(), np.arange(0, m * k + 1, k)), shape=(m, len(touched)))
    n_views = 0 if views is None else views.shape[1]
    if n_views:
        Z = hstack([Z, csr_matrix(views[idx])], format="csr")
    penalty = np.r_[np.full(len(touched), l2), np.broadcast_to(np.asarray(l2_views, dtype=np.float64), (n_views,))]
    offset = prior * base_z[idx]
    sign = np.where(y, 1.0, -1.0)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    cw = np.where(y, 0.5 / max(n_pos, 1), 0.5 / max(n_neg, 1)) * len(y)

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        margin = sign * (offset + Z @ w + b)
        val = float(np.sum(cw * np.logaddexp(0.0, -margin)) + 0.5 * np.sum(penalty * w * w))
        g = -cw * sign * expit(-margin)
        return val, np.concatenate([Z.T @ g + penalty * w, [g.sum()]])

    bounds = None
    if nonneg_from is not None:  # view columns from this one on may only raise a record's score
        bounds = [(None, None)] * (len(touched) + nonneg_from) + [(0.0, None)] * (n_views - nonneg_from) + [(None, None)]
    res = minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 200})
    weights = np.zeros(n_nodes)
    weights[touched] = res.x[: len(touched)]
    return weights, (res.x[len(touched):-1] if n_views else None)


def _pair_rarity(frame: pd.DataFrame, schema: Schema, max_columns: int = 12) -> np.ndarray | None:
    """Per row: how many pairs of its categorical values, each common on its own, occur together at
    most twice in the file (weighted by log of the rarer value's count). Such novel combinations of
    ordinary values are what one-hot encodings and per-column detectors miss."""
    import pandas as pd

    cats = [c for c in schema.by_role(Role.CATEGORICAL) if c != schema.label_column and c in frame.columns]
    cats = cats[:max_columns]
    if len(cats) < 2:
        return None
    codes = [pd.factorize(frame[c].astype(str))[0].astype(np.int64) for c in cats]
    counts = [np.bincount(c)[c] for c in codes]
    out = np.zeros(len(frame))
    for i in range(len(cats)):
        for j in range(i + 1, len(cats)):
            pair = codes[i] * (codes[j].max() + 1) + codes[j]
            together = np.bincount(pair)[pair]
            out += (together <= 2) * np.log(np.minimum(counts[i], counts[j]))
    return out


def _scaled_profile(cols: list[np.ndarray]) -> np.ndarray:
    """Stack non-negative rarity columns, each divided by its 99.9th percentile (its maximum when that
    is 0) and clipped to [0, 5], so one ridge penalty suits them all."""
    out = np.empty((len(cols[0]), len(cols)), dtype=np.float32)
    for j, c in enumerate(cols):
        c = np.nan_to_num(np.asarray(c, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        c = np.clip(c, 0.0, None)
        top = float(np.quantile(c, 0.999)) or float(c.max()) or 1.0
        out[:, j] = np.clip(c / top, 0.0, 5.0)
    return out


def _column_profile(frame: pd.DataFrame, schema: Schema, fm, *, contributions: np.ndarray | None = None,
                    base_z: np.ndarray | None = None, max_categorical: int = 12, max_numeric: int = 32,
                    max_context: int = 8, max_contributions: int = 64) -> np.ndarray | None:
    """Per row, how rare each of its columns is, each pair of its categorical values is, and each
    amount is within the group of rows sharing a categorical value: a few dozen columns whatever the
    one-hot width, so a confirmed anomaly lifts records that are unusual *in the same way* (the same
    pair of columns never seen together, the same amount out of line for its account).

    - categorical value: -log of its share of the rows;
    - pair of categorical values: log((expected count + 1) / (count + 1)) where the expected count is
      count(a) * count(b) / n, clipped at 0 (common values that almost never occur together);
    - numeric feature (as the detector sees it: logged, robust-scaled): |value|;
    - numeric feature within a categorical group: |value - group median| / group MAD (groups of at
      least 20 rows; others use the whole column);
    - with ``contributions`` (the detector's per-column share of each row's score) and ``base_z``: each
      column's share times the row's positive score, i.e. how much of the detector's alarm that column
      carries (the autoencoder's per-column reconstruction error sees value combinations of any order).
    """
    import pandas as pd

    n = len(frame)
    cols: list[np.ndarray] = []
    cats = [c for c in schema.by_role(Role.CATEGORICAL) if c != schema.label_column and c in frame.columns]
    cats = cats[:max_categorical]
    codes = [pd.factorize(frame[c].astype(str))[0].astype(np.int64) for c in cats]
    counts = [np.bincount(c)[c].astype(np.float64) for c in codes]
    for cnt in counts:
        cols.append(-np.log(cnt / n))
    for i in range(len(cats)):
        for j in range(i + 1, len(cats)):
            pair = codes[i] * (codes[j].max() + 1) + codes[j]
            together = np.bincount(pair)[pair].astype(np.float64)
            cols.append(np.log((counts[i] * counts[j] / n + 1.0) / (together + 1.0)))
    numeric = np.asarray(getattr(fm, "numeric", np.zeros((n, 0))), dtype=np.float64)
    if numeric.shape[0] == n and numeric.shape[1]:
        spread = numeric.std(axis=0)
        keep = np.flatnonzero(spread > 0)[:max_numeric]
        for j in keep:
            cols.append(np.abs(numeric[:, j]))
        ctx = keep[np.argsort(-spread[keep])][:max_context] if len(codes) else []
        for code in codes[:max_context]:
            size = np.bincount(code)
            big = size[code] >= 20
            for j in ctx:
                x = numeric[:, j]
                s = pd.Series(x).groupby(code)
                med = s.transform("median").to_numpy()
                mad = (pd.Series(np.abs(x - med)).groupby(code).transform("median").to_numpy() * 1.4826)
                gmed = np.median(x)
                gmad = 1.4826 * np.median(np.abs(x - gmed)) or (np.std(x) or 1.0)
                mad = np.where(big & (mad > 0), mad, gmad)
                med = np.where(big, med, gmed)
                cols.append(np.abs(x - med) / mad)
    if contributions is not None and base_z is not None:
        contrib = np.asarray(contributions, dtype=np.float64)
        if contrib.ndim == 2 and contrib.shape[0] == n and 0 < contrib.shape[1] <= max_contributions:
            amount = np.clip(np.asarray(base_z, dtype=np.float64), 0.0, None)[:, None] * contrib
            cols.extend(amount[:, j] for j in range(contrib.shape[1]))
    if not cols:
        return None
    return _scaled_profile(cols)


def _view_matrix(model, frame: pd.DataFrame, schema: Schema, score_result) -> tuple[np.ndarray | None, int | None]:
    """Extra unsupervised scores the verdicts may weight in: the ensemble members' own scores and the
    categorical pair rarity; robust-standardised and clipped."""
    cols = []
    members = getattr(score_result, "member_scores", None) or {}
    if len(members) > 1:
        cols.extend(np.asarray(v, dtype=np.float64) for v in members.values())
    pr = _pair_rarity(frame, schema)
    pair_index = None
    if pr is not None and pr.std() > 0:
        pair_index = len(cols)
        cols.append(pr)
    if not cols:
        return None, None
    V = np.column_stack([_robust_z(c) for c in cols])
    return np.clip(V, -5.0, 20.0), pair_index


def _verdict_arrays(verdicts: Mapping[int, str], n: int) -> tuple[np.ndarray, np.ndarray]:
    anomalies, normals = [], []
    for i, v in verdicts.items():
        i = int(i)
        if not 0 <= i < n:
            raise AnomalyDeskError(f"verdict for row {i} but the data has {n} rows")
        v = str(v).lower() if v is not None else ""
        if v == "anomaly":
            anomalies.append(i)
        elif v == "normal":
            normals.append(i)
    return np.asarray(sorted(anomalies), dtype=np.int64), np.asarray(sorted(normals), dtype=np.int64)


def _model_token(model) -> tuple:
    return (id(model), id(getattr(model, "detector_", None)), id(getattr(model, "model_", None)),
            getattr(model, "fit_seconds_", None))


def _is_fitted(model) -> bool:
    return any(hasattr(model, a) for a in ("model_", "detector_", "preprocessor_"))


_RULE_NAMES = {"best_f1": "best F1", "cost": "least expected cost"}


def _within_reach_of_verdicts(th, scores: np.ndarray, reviewed: np.ndarray):
    """The verdict threshold ``th``, unless it is above the product's default cut and most of the
    records it would unflag (those between the two cuts) have not been reviewed. Verdicts come from
    the top of the queue: three of them (two anomalies, one normal) put the best cut at the lowest
    confirmed anomaly and would unflag every record below it, on no evidence about those records. The
    verdicts may always lower the cut, and may raise it over records the analyst has looked at."""
    from engine import thresholds

    auto = thresholds.default_threshold(scores)
    if th.value <= auto.value:
        return th
    band = (scores >= auto.value) & (scores < th.value)
    looked = np.zeros(len(scores), dtype=bool)
    looked[reviewed] = True
    unreviewed = int((band & ~looked).sum())
    if unreviewed <= int((band & looked).sum()):
        return th
    return thresholds.Threshold(
        auto.value, auto.method,
        f"{auto.explanation} Kept: {unreviewed} of the records a cut from the {len(reviewed)} verdicts "
        f"would unflag have not been reviewed, and the verdicts say nothing about them "
        f"({_RULE_NAMES.get(th.method, th.method)} on the verdicts alone: {th.value:.4g}, flagging "
        f"{int((scores >= th.value).sum())}).", int((scores >= auto.value).sum()))


def retrain_with_verdicts(model, frame: pd.DataFrame, schema: Schema, verdicts: Mapping[int, str], *,
                          progress: ProgressCallback | None = None, should_stop: StopCallback | None = None,
                          state: FeedbackState | None = None, refit: bool | str = "auto",
                          cost_missed: float | None = None, cost_review: float | None = None,
                          params: Mapping[str, Any] | None = None) -> FeedbackResult:
    """Re-rank ``frame`` using the analyst's verdicts; the GUI's "Retrain with verdicts" and
    ``simulate-review`` both call exactly this.

    ``model``: an AnomalyModel (fitted or not); ``verdicts``: row index -> "anomaly" | "normal" |
    "unsure" (unsure is ignored). Returns a FeedbackResult; pass its ``state`` back next time for a
    warm start (the detector and region forest are reused; only the light re-ranker is relearnt).

    What the verdicts do:
    - the detector is (re)fitted with sample weights: confirmed anomalies 0 (never learnt as
      normal), confirmed normals 2 (clean data). ``refit="auto"`` fits only when the model is
      unfitted (refitting later measured slower and no better); ``True`` always refits, ``False`` never.
      The region forest the re-ranker uses is fitted without the anomalies confirmed so far.
    - the ranking: score = detector score (robust z) + learnt weights of the isolation-forest regions
      each row falls in + learnt weights of the row's column profile (per-column, per-pair and
      in-context rarity; logistic loss on the verdicts, ridge-penalised), so records near confirmed
      anomalies, or unusual in the same columns, rise and records near confirmed normals sink.
    - the threshold: best F1 on the verdicts, or minimum expected cost when ``cost_missed`` and
      ``cost_review`` are given (engine.thresholds); the default rule (``default_threshold``) when the
      verdicts hold a single class, and when they would raise the cut above it over records nobody reviewed
      (``_within_reach_of_verdicts``).
    """
    from engine import thresholds

    t0 = time.perf_counter()
    cfg = {**RERANK_DEFAULTS, **(params or {})}
    n = len(frame)
    anomalies, normals = _verdict_arrays(verdicts, n)

    def report(frac: float, msg: str) -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("retraining with verdicts was cancelled")
        if progress is not None:
            progress(frac, msg, anomalies=len(anomalies), normals=len(normals))

    fp = _fingerprint(frame)
    if state is not None and (state.fingerprint != fp or state.params != cfg
                              or state.model_token != _model_token(model)):
        state = None  # another file, other settings, or the model was refitted elsewhere
    exclude = np.zeros(n, dtype=bool)
    exclude[anomalies] = True
    refitted = False
    need_fit = not _is_fitted(model) or refit is True
    # refit="auto" fits only an unfitted model. Measured with the `auto` detector (bench_feedback.py):
    # refitting once confirmed anomalies were 1% of the rows cost a 10 s retrain on mammography and
    # found fewer (173 vs 180 in 300 reviews; kdd 185 vs 193): the re-ranker carries the gain.
    base_fit_seconds = state.base_fit_seconds if state is not None else float(
        getattr(model, "fit_seconds_", 0.0) or 0.0)
    base_excluded = state.base_excluded if state is not None else frozenset()
    if need_fit:
        report(0.05, "fitting the detector with the verdicts")
        weight = np.ones(n)
        weight[normals] = 2.0
        weight[anomalies] = 0.0
        tf = time.perf_counter()
        model.fit(frame, schema, progress=None, should_stop=should_stop, sample_weight=weight)
        base_fit_seconds = time.perf_counter() - tf
        base_excluded = frozenset(int(i) for i in anomalies)
        refitted = True
    if state is None or refitted:
        report(0.5, "scoring")
        scored = model.score(frame)
        base_scores = np.asarray(scored.scores, dtype=np.float64)
        nodes, n_nodes = (state.nodes, state.n_nodes) if state is not None else (None, 0)
        if nodes is None:
            report(0.6, "building the region forest")
            X = np.asarray(model.transform(frame).values, dtype=np.float32)
            # fewer trees on large files keep the (rows x trees) region table near 100 MB
            n_trees = int(cfg["n_trees"]) if n <= 250_000 else max(20, int(cfg["n_trees"] * 250_000 / n))
            nodes, n_nodes = _region_embedding(X, exclude=exclude, n_trees=n_trees,
                                               levels=tuple(cfg["levels"]), seed=int(getattr(model, "seed", 0)))
        state = FeedbackState(fingerprint=fp, model_token=_model_token(model), base_scores=base_scores,
                              base_z=_robust_z(base_scores),
                              nodes=nodes, n_nodes=n_nodes, base_excluded=base_excluded,
                              base_fit_seconds=base_fit_seconds, params=cfg,
                              views=None)
        if cfg["views"]:
            state.views, state.pair_view_index = _view_matrix(model, frame, schema, scored)
        if cfg["profile"]:
            report(0.7, "profiling columns")
            state.profile = _column_profile(frame, schema, model.transform(frame),
                                            contributions=getattr(scored, "contributions", None)
                                            if cfg["profile_contributions"] else None,
                                            base_z=state.base_z)
    report(0.8, "re-ranking with the verdicts")
    prior = float(cfg["prior"])
    idx = np.concatenate([anomalies, normals])
    if len(idx):
        y = np.zeros(len(idx), dtype=bool)
        y[: len(anomalies)] = True
        blocks = [(b, lam) for b, lam in ((state.views, float(cfg["l2_views"])),
                                            (state.profile, float(cfg["l2_profile"]))) if b is not None]
        dense = np.hstack([b for b, _ in blocks]) if blocks else None
        lams = np.concatenate([np.full(b.shape[1], lam) for b, lam in blocks]) if blocks else 1.0
        nv = 0 if state.views is None else state.views.shape[1]
        w, a = _learn_node_weights(state.nodes, state.n_nodes, state.base_z, idx, y, prior, float(cfg["l2"]),
                                   views=dense, l2_views=lams,
                                   nonneg_from=nv if cfg["profile_nonneg"] and state.profile is not None else None)
        learnt = w[state.nodes].sum(axis=1)
        if a is not None:
            learnt += dense @ a
            a, state.profile_weights = a[:nv] if nv else None, a[nv:] if state.profile is not None else None
        scores = state.base_z + learnt / prior
    else:
        w = a = None
        scores = state.base_z.copy()
    if state.views is not None and float(cfg["pair_prior"]) and state.pair_view_index is not None:
        scores = scores + float(cfg["pair_prior"]) * state.views[:, state.pair_view_index]
    state.node_weights, state.view_weights = w, a
    state.rounds += 1
    severity = severity_of(scores, np.sort(scores))  # the percentile among all rows, as everywhere
    y_lab = np.zeros(len(idx), dtype=bool)
    y_lab[: len(anomalies)] = True
    if len(anomalies) and len(normals):
        if cost_missed is not None and cost_review is not None:
            th = thresholds.min_cost_threshold(scores[idx], y_lab, cost_missed=cost_missed,
                                               cost_review=cost_review)
        else:
            th = thresholds.best_f1_threshold(scores[idx], y_lab)
        th = _within_reach_of_verdicts(th, scores, idx)
    else:
        th = thresholds.default_threshold(scores)
    report(1.0, "re-ranked")
    return FeedbackResult(scores=scores, severity=severity, model=model, threshold=float(th.value),
                          threshold_explanation=th.explanation, seconds=time.perf_counter() - t0,
                          refitted=refitted, n_anomalies=len(anomalies), n_normals=len(normals),
                          state=state, base_scores=state.base_scores)
