"""Retraining with verdicts: a light re-ranker over the detector's scores, so records like confirmed
anomalies rise and records like confirmed normals sink, and the queue never does worse than the
detector's own ranking.

Per retrain (cheap, everything heavy is prepared once and kept in ``FeedbackState``):
1. *choose by the verdicts*: the detector's score and the views (ensemble members and cheap detectors,
   ``engine.feedback.views``) are mixed by how well each ranks the verdicts (AUC on the reviewed rows,
   shrunk towards the detector's own score until enough verdicts are in);
2. *learn from every verdict*: a logistic model on the reviewed rows with that mixture as a fixed
   offset, one ridge-penalised weight per isolation-forest region and per column-profile feature, and a
   intercept fixed at the top-``tau`` quantile, so normal verdicts alone already lower their regions
   (learnt from the verdicts once ``learn_intercept_from`` of each class are in);
   beside it, once a few of each class are in, an extra-trees classifier on the same reviewed rows
   (over the detector's score, the views and the profile) adds its log-odds: the non-linear part;
3. ``next_batch`` picks what to review next: partly spread over detectors and regions while fewer than
   ``explore_until`` anomalies are confirmed and no view yet separates them from the confirmed normals
   (exploration), then shared between the re-ranked and the static ranking by how often each has found
   anomalies so far (the guard that keeps feedback from falling below static).
The figures behind each setting are in docs/decisions.md."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import AnomalyDeskError, stop_if_asked
from engine.feedback.views import EXTRA_VIEWS, auc_on_labelled, detector_views, robust_z, view_weights
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
    "prior": 1.0,  # weight of the (mixed) detector score in the learnt score
    "l2": 1.0,  # ridge penalty on node weights: how far verdicts may move a region
    "profile": True,  # learn weights for per-column / per-pair rarity features (``_column_profile``)
    "profile_contributions": True,  # add the detector's per-column share of each row's score to the profile
    "profile_nonneg": True,  # profile weights may only raise scores (rarity never makes a record more normal)
    "l2_profile": 0.1,  # ridge penalty on those weights (0.03 and 1.0 measured worse; 0.03 unstable on cardio)
    "views": EXTRA_VIEWS,  # cheap detectors added as views beside the ensemble's members (() = members only)
    "view_rows": 20_000,  # rows the extra views are fitted on
    "evidence": 20.0,  # verdicts (of the smaller class) at which the views get half the mixture
    "sharpness": 40.0,  # softmax sharpness over the views' AUC on the verdicts
    "tau": 0.03,  # fixed intercept: the share of rows the verdict model treats as the anomalous top
    "learn_intercept_from": 4,  # ...until this many verdicts of each class are in; then learnt, at most that
    "balance": 0.5,  # class weights (n / 2 n_class) ** balance: 1 = balanced, 0 = one weight per verdict
    "explore": True,  # spread the next batch over detectors and regions while few anomalies are confirmed
    "explore_share": 0.5,  # share of such a batch taken by exploration (the rest: the re-ranked top)
    "explore_until": 6,  # explore until this many anomalies are confirmed (a cold queue, not only an empty one)
    "explore_separated": 0.95,  # ...unless a view already ranks the verdicts this well (AUC)
    "explore_overlap": 0.5,  # an exploration pick shares at most this share of regions with a normal / a pick
    "guard": True,  # share each batch between the re-ranked and the static ranking by their hit rates
    "guard_prior": 4.0,  # pseudo-counts: re-ranked picks start at 4 hits in 5, static-only ones at 1 in 5
    "guard_power": 5.0,  # how sharply the share follows the better hit rate
    "classifier": 2.0,  # weight of the verdict classifier's log-odds in the score (0 = no classifier)
    "classifier_trees": 100,  # extra trees of that classifier (50 past 200k rows, to keep a retrain fast)
    "classifier_min": 3,  # verdicts of each class before the classifier is used
}

#: provenance bits of ``FeedbackState.picked``: which ranking put a row into a batch
PICK_STATIC, PICK_FEEDBACK, PICK_EXPLORE = 1, 2, 4


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=list)


@dataclass
class FeedbackState:
    """What one retrain leaves for the next (pass ``FeedbackResult.state`` back as ``state=``), and
    what ``next_batch`` reads. Valid only for the same frame. ``to_arrays``/``from_arrays`` turn it
    into plain numpy arrays + a JSON-able dict (no pickle) for a project file."""

    fingerprint: str  # the frame's
    model_token: tuple | None  # which fitted detector the base scores came from (None: restored, unbound)
    base_scores: np.ndarray  # the detector's own scores, higher = more anomalous
    base_z: np.ndarray  # the same, robust-standardised (median 0, MAD 1)
    nodes: np.ndarray  # (n_rows, k) int32: ids of the forest regions each row falls in
    n_nodes: int
    base_excluded: frozenset[int]  # rows left out of the detector's last fit (confirmed anomalies)
    base_fit_seconds: float
    params: dict[str, Any]
    node_weights: np.ndarray | None = None
    views: np.ndarray | None = None  # (n_rows, n_views) float32 robust z of the detector views
    view_names: list[str] = field(default_factory=list)
    view_mix: np.ndarray | None = None  # weights over [detector score] + views from the last verdicts
    view_auc: np.ndarray | None = None  # their AUC on the verdicts
    base_name: str = "detector"
    rounds: int = 0
    profile: np.ndarray | None = None  # (n_rows, k) per-column / per-pair rarity (``_column_profile``)
    profile_weights: np.ndarray | None = None
    labelled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows with verdicts
    labelled_y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # True = anomaly
    picked: np.ndarray | None = None  # (n_rows,) uint8 PICK_* bits set by ``next_batch``

    _ARRAYS = ("base_scores", "base_z", "nodes", "node_weights", "views", "view_mix", "view_auc", "profile",
               "profile_weights", "labelled", "labelled_y", "picked")

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta): every array field that is set, and the rest as JSON-able values."""
        arrays = {k: np.ascontiguousarray(getattr(self, k)) for k in self._ARRAYS if getattr(self, k) is not None}
        arrays["base_excluded"] = np.asarray(sorted(self.base_excluded), dtype=np.int64)
        meta = {"fingerprint": self.fingerprint, "n_nodes": int(self.n_nodes),
                "base_fit_seconds": float(self.base_fit_seconds), "params": json.loads(_params_key(self.params)),
                "view_names": list(self.view_names), "base_name": self.base_name, "rounds": int(self.rounds)}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> FeedbackState:
        """The state ``to_arrays`` gave; bound to the model of the next ``retrain_with_verdicts`` call
        (the frame's fingerprint is still checked)."""
        try:
            params = {**RERANK_DEFAULTS, **meta["params"]}
            params = {k: tuple(v) if isinstance(RERANK_DEFAULTS.get(k), tuple) and isinstance(v, list) else v
                      for k, v in params.items()}
            opt = {k: np.asarray(arrays[k]) for k in cls._ARRAYS if k in arrays}
            return cls(fingerprint=str(meta["fingerprint"]), model_token=None,
                       n_nodes=int(meta["n_nodes"]), base_fit_seconds=float(meta["base_fit_seconds"]),
                       params=params, view_names=[str(v) for v in meta.get("view_names", [])],
                       base_name=str(meta.get("base_name", "detector")), rounds=int(meta.get("rounds", 0)),
                       base_excluded=frozenset(int(i) for i in np.asarray(arrays.get("base_excluded", []))),
                       **opt)
        except (KeyError, TypeError, ValueError) as exc:
            raise AnomalyDeskError(f"the saved feedback state is incomplete or damaged ({exc})") from None


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
    #: (name, weight in the mixture) of the detector / view that ranks the verdicts best (AUC); None until
    #: both classes are in. Its weight grows with the verdicts (``evidence``), the detector's own keeps the rest
    favoured: tuple[str, float] | None = None
    view_weights: dict[str, float] = field(default_factory=dict)  # weight of every view in the mixture
    view_auc: dict[str, float] = field(default_factory=dict)  # each view's AUC on the verdicts

    @property
    def favoured_text(self) -> str:
        """One line for the queue: which detector the verdicts favour, or why none yet."""
        if self.favoured is None:
            return ("the verdicts hold no anomaly yet: the next batch explores other detectors and regions"
                    if self.n_normals and not self.n_anomalies else "the detector's own ranking")
        name, w = self.favoured
        auc = self.view_auc.get(name)
        return (f"verdicts favour {name} (weight {w:.0%}" + (f", AUC {auc:.2f} on the verdicts)" if auc is not None
                                                             else ")"))


def _fingerprint(frame: pd.DataFrame) -> str:
    import pandas as pd

    head = pd.util.hash_pandas_object(frame.iloc[:: max(1, len(frame) // 64)], index=False).to_numpy()
    return f"{len(frame)}:{'|'.join(map(str, frame.columns))}:{int(head.sum()) & 0xFFFFFFFFFFFF:x}"


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
    d = X32.shape[1]
    cols, offset = [], 0
    for est, feats in zip(forest.estimators_, forest.estimators_features_, strict=True):
        tree = est.tree_
        # the tree's own apply, on the float32 rows as they are: sklearn's ``est.apply`` validates and
        # ``X[:, feats]`` copies the whole matrix once per tree (110 s of 164 on a 100k x 311 ledger)
        same = len(feats) == d and np.array_equal(feats, np.arange(d))
        leaf = tree.apply(X32 if same else np.ascontiguousarray(X32[:, feats]))
        depth = tree.compute_node_depths() - 1  # root at depth 0
        for level in levels:
            node = leaf if level is None else _ancestor_at_depth(
                tree.children_left, tree.children_right, depth, int(level))[leaf]
            cols.append(node.astype(np.int64) + offset)
        offset += tree.node_count
    return np.stack(cols, axis=1).astype(np.int32), offset


def _learn_node_weights(nodes: np.ndarray, n_nodes: int, offset: np.ndarray, idx: np.ndarray, y: np.ndarray,
                        l2: float, dense: np.ndarray | None = None, l2_dense: float | np.ndarray = 1.0,
                        nonneg_from: int | None = None, intercept: float = 0.0, learn_intercept: bool = False,
                        balance: float = 1.0) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Logistic loss on the labelled rows ``idx`` with ``offset`` (the detector's score there) fixed,
    one free weight per forest region (ridge-penalised) and one per column of ``dense`` (the column
    profile). A confirmed anomaly lifts the regions it shares with other records, a confirmed normal
    lowers them (the active-anomaly-discovery idea, as a regularised logistic model rather than AAD's
    hinge). ``intercept`` fixed (AAD's quantile) lets normal verdicts alone move regions, where a
    free intercept would absorb them; ``learn_intercept`` fits it to the verdicts, at most the fixed
    value. Returns (node weights, dense weights or None, intercept)."""
    from scipy.optimize import minimize
    from scipy.sparse import csr_matrix
    from scipy.special import expit
    from threadpoolctl import threadpool_limits

    sub = nodes[idx]
    m, k = sub.shape
    touched, inv = np.unique(sub, return_inverse=True)
    Z = csr_matrix((np.ones(m * k), inv.ravel(), np.arange(0, m * k + 1, k)), shape=(m, len(touched)))
    # Ridge on the region weights: by the representer theorem w = Z' beta / l2 at the optimum, so the
    # problem is solved over one beta per labelled row with K = Z Z' (regions two rows share), not over
    # every region they touch (tens of thousands): the same optimum, a hundred times faster.
    K = (Z @ Z.T).toarray() / float(l2)
    n_dense = 0 if dense is None else dense.shape[1]
    D = np.asarray(dense[idx], dtype=np.float64) if n_dense else np.zeros((m, 0))
    pen = np.broadcast_to(np.asarray(l2_dense, dtype=np.float64), (n_dense,))
    sign = np.where(y, 1.0, -1.0)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    cw = np.where(y, 0.5 * len(y) / max(n_pos, 1), 0.5 * len(y) / max(n_neg, 1)) ** float(balance)
    free, b0 = bool(learn_intercept), float(intercept)

    def loss(theta):
        beta, a = theta[:m], theta[m:m + n_dense]
        b = b0 + theta[-1] if free else b0
        kb = K @ beta
        margin = sign * (offset + kb + D @ a + b)
        val = float(np.sum(cw * np.logaddexp(0.0, -margin)) + 0.5 * beta @ kb + 0.5 * np.sum(pen * a * a))
        g = -cw * sign * expit(-margin)
        parts = [K @ (g + beta), D.T @ g + pen * a] + ([[g.sum()]] if free else [])
        return val, np.concatenate(parts)

    # dense columns from ``nonneg_from`` on may only raise a score; a learnt intercept may only fall
    # below the fixed one (the verdicts may say anomalies are rarer at the top than tau assumes)
    nf = n_dense if nonneg_from is None else nonneg_from
    bounds = ([(None, None)] * (m + nf) + [(0.0, None)] * (n_dense - nf) + [(None, 0.0)] * (1 if free else 0))
    # one BLAS thread: the products are a few hundred wide, and threads that spin on a busy machine
    # made each retrain 25 times slower (1.7 s against 46 s for 30 retrains on cardio at load 13)
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(loss, np.zeros(m + n_dense + (1 if free else 0)), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": 200})
    weights = np.zeros(n_nodes, dtype=np.float32)
    weights[touched] = (Z.T @ res.x[:m]) / float(l2)
    return weights, (res.x[m:m + n_dense] if n_dense else None), b0 + (float(res.x[-1]) if free else 0.0)


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


def prepare_state(X: np.ndarray, base_scores: np.ndarray, *, params: Mapping[str, Any] | None = None,
                  members: Mapping[str, np.ndarray] | None = None, profile: np.ndarray | None = None,
                  exclude: np.ndarray | None = None, seed: int = 0, fingerprint: str = "",
                  model_token: tuple | None = None, base_name: str = "detector", nodes=None,
                  base_excluded: frozenset[int] = frozenset(), base_fit_seconds: float = 0.0,
                  report: Callable[[float, str], None] | None = None) -> FeedbackState:
    """The one-time preparation from the encoded rows ``X`` and the detector's scores: the region
    forest, the detector views and (given) the column profile, float32, so each retrain only relearns
    a few weights. ``retrain_with_verdicts`` calls this; so may a benchmark replaying cached scores."""
    cfg = {**RERANK_DEFAULTS, **(params or {})}
    n = len(base_scores)
    base_scores = np.asarray(base_scores, dtype=np.float64)
    if nodes is None:
        if report:
            report(0.6, "building the region forest")
        # fewer trees on large files keep the (rows x trees) region table at 10M cells (40 MB) and its
        # build within seconds: 100 trees up to 100k rows, 20 at 500k
        n_trees = max(20, min(int(cfg["n_trees"]), 10_000_000 // max(n, 1)))
        nodes, n_nodes = _region_embedding(X, exclude=np.zeros(n, bool) if exclude is None else exclude,
                                           n_trees=n_trees, levels=tuple(cfg["levels"]), seed=seed)
    else:
        nodes, n_nodes = nodes
    state = FeedbackState(fingerprint=fingerprint, model_token=model_token, base_scores=base_scores,
                          base_z=robust_z(base_scores), nodes=nodes, n_nodes=n_nodes,
                          base_excluded=base_excluded, base_fit_seconds=base_fit_seconds, params=cfg,
                          base_name=base_name, profile=profile, picked=np.zeros(n, dtype=np.uint8))
    if cfg["views"] is not None:
        if report:
            report(0.7, "scoring the detector views")
        state.view_names, state.views = detector_views(X, members, extra=tuple(cfg["views"] or ()),
                                                       fit_rows=int(cfg["view_rows"]), seed=seed,
                                                       skip=(base_name,))
    return state


def rank_with_verdicts(state: FeedbackState, anomalies: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """The re-ranked scores for these verdicts (row indices); sets the learnt weights on ``state``."""
    cfg = state.params
    prior = float(cfg["prior"])
    idx = np.concatenate([anomalies, normals]).astype(np.int64)
    y = np.zeros(len(idx), dtype=bool)
    y[: len(anomalies)] = True
    state.labelled, state.labelled_y = idx, y
    z = state.base_z
    state.view_mix = state.view_auc = None
    if state.views is not None and len(anomalies) and len(normals):
        auc = auc_on_labelled(np.column_stack([state.base_z[idx], state.views[idx]]), y)
        mix = view_weights(auc, len(anomalies), len(normals), evidence=float(cfg["evidence"]),
                           sharpness=float(cfg["sharpness"]))
        if mix[0] < 1.0 - 1e-9:
            z = mix[0] * state.base_z + state.views.astype(np.float64) @ mix[1:]
        state.view_mix, state.view_auc = mix, auc
    state.node_weights = state.profile_weights = None
    if not len(idx):
        return z.copy()
    intercept = -prior * float(np.quantile(z, 1.0 - float(cfg["tau"])))
    dense = state.profile if cfg["profile"] else None
    w, a, _ = _learn_node_weights(state.nodes, state.n_nodes, prior * z[idx], idx, y, float(cfg["l2"]),
                                  dense=dense, l2_dense=float(cfg["l2_profile"]),
                                  nonneg_from=0 if cfg["profile_nonneg"] else None, intercept=intercept,
                                  learn_intercept=_learns_intercept(cfg, y), balance=float(cfg["balance"]))
    learnt = w[state.nodes].sum(axis=1, dtype=np.float64)
    if a is not None:
        learnt += dense @ a.astype(np.float32)
    state.node_weights, state.profile_weights = w, a
    return z + learnt / prior + _classifier_term(state, idx, y)


def _learns_intercept(cfg: Mapping[str, Any], y: np.ndarray) -> bool:
    """Whether the verdicts are enough to fit the intercept: ``learn_intercept_from`` of each class.
    Before that the top-``tau`` quantile stands in for the share of anomalies; after it, the verdicts may
    lower it (yeast, a third anomalies: the fixed one read six normals in the top ten as a region to bury and
    the second batch fell to 2 hits in 10 against the static ranking's 4)."""
    least = cfg["learn_intercept_from"]
    return least is not None and min(int(y.sum()), int((~y).sum())) >= int(least)


def _classifier_term(state: FeedbackState, idx: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Weighted log-odds of an extra-trees classifier fitted on the reviewed rows over the detector's
    score, the views and the column profile. The region and profile weights are additive; this learns
    where the verdicts split (high on this view but not on that one). Figures in docs/decisions.md."""
    from sklearn.ensemble import ExtraTreesClassifier

    cfg = state.params
    weight, least = float(cfg["classifier"]), int(cfg["classifier_min"])
    n_pos = int(y.sum())
    if weight <= 0 or min(n_pos, len(y) - n_pos) < least:
        return 0.0
    parts = [state.base_z.astype(np.float32)[:, None]]
    parts += [p for p in (state.views, state.profile) if p is not None]
    F = np.hstack(parts) if len(parts) > 1 else parts[0]
    n = len(F)
    trees = int(cfg["classifier_trees"]) if n <= 200_000 else max(10, int(cfg["classifier_trees"]) // 2)
    # seeded by the verdict count, so a replay of the same verdicts gives the same ranking
    clf = ExtraTreesClassifier(n_estimators=trees, max_features="sqrt", class_weight="balanced",
                               random_state=len(idx), n_jobs=1).fit(F[idx], y)
    p = clf.predict_proba(F)[:, list(clf.classes_).index(True)]
    # clipped log-odds: a leaf of anomalies only lifts a row by a few z units, never without bound
    return weight * np.log((p + 0.02) / (1.02 - p))


def retrain_with_verdicts(model, frame: pd.DataFrame, schema: Schema, verdicts: Mapping[int, str], *,
                          progress: ProgressCallback | None = None, should_stop: StopCallback | None = None,
                          state: FeedbackState | None = None, refit: bool | str = "auto",
                          cost_missed: float | None = None, cost_review: float | None = None,
                          params: Mapping[str, Any] | None = None, scored=None) -> FeedbackResult:
    """Re-rank ``frame`` using the analyst's verdicts; the GUI's "Retrain with verdicts" and
    ``simulate-review`` both call exactly this (and ``next_batch`` for what to review next).

    ``model``: an AnomalyModel (fitted or not); ``verdicts``: row index -> "anomaly" | "normal" |
    "unsure" (unsure is ignored). Returns a FeedbackResult; pass its ``state`` back next time for a
    warm start (the region forest, views and profile are reused; only a few weights are relearnt).
    ``scored``: the model's ScoreResult on ``frame`` when the caller has it (saves scoring again).

    What the verdicts do:
    - the detector is (re)fitted with sample weights (confirmed anomalies 0, confirmed normals 2) only
      when ``model`` is unfitted or ``refit=True`` (refitting later measured slower and no better);
    - the ranking: see the module docstring (views chosen by the verdicts, region and profile weights);
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
        stop_if_asked(should_stop, "retraining with verdicts was cancelled")
        if progress is not None:
            progress(frac, msg, anomalies=len(anomalies), normals=len(normals))

    fp = _fingerprint(frame)
    if state is not None and state.model_token is None and state.fingerprint == fp:
        state.model_token = _model_token(model)  # restored from a project: bind it to this model
    if state is not None and (state.fingerprint != fp or _params_key(state.params) != _params_key(cfg)
                              or state.model_token != _model_token(model)):
        state = None  # another file, other settings, or the model was refitted elsewhere
    refitted = False
    need_fit = not _is_fitted(model) or refit is True
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
        report(0.3, "scoring")
        if scored is None or refitted:
            scored = model.score(frame)
        fm = model.transform(frame)
        X = np.asarray(fm.values, dtype=np.float32)
        exclude = np.zeros(n, dtype=bool)
        exclude[anomalies] = True
        base_z = robust_z(np.asarray(scored.scores, dtype=np.float64))
        profile = None
        if cfg["profile"]:
            report(0.5, "profiling columns")
            profile = _column_profile(frame, schema, fm, base_z=base_z,
                                      contributions=scored.contributions if cfg["profile_contributions"] else None)
        state = prepare_state(
            X, scored.scores, params=cfg, members=getattr(scored, "member_scores", None), profile=profile,
            exclude=exclude, seed=int(getattr(model, "seed", 0) or 0), fingerprint=fp,
            model_token=_model_token(model), base_name=str(getattr(model, "detector", "detector")),
            nodes=(state.nodes, state.n_nodes) if state is not None else None, base_excluded=base_excluded,
            base_fit_seconds=base_fit_seconds, report=report)
    report(0.8, "re-ranking with the verdicts")
    scores = rank_with_verdicts(state, anomalies, normals)
    state.rounds += 1
    severity = severity_of(scores, np.sort(scores))  # the percentile among all rows, as everywhere
    idx, y_lab = state.labelled, state.labelled_y
    if len(anomalies) and len(normals):
        if cost_missed is not None and cost_review is not None:
            th = thresholds.min_cost_threshold(scores[idx], y_lab, cost_missed=cost_missed,
                                               cost_review=cost_review)
        else:
            th = thresholds.best_f1_threshold(scores[idx], y_lab)
        th = _within_reach_of_verdicts(th, scores, idx)
    else:
        th = thresholds.default_threshold(scores)
    favoured, weights, aucs = None, {}, {}
    if state.view_mix is not None:
        names = [state.base_name, *state.view_names]
        weights = {k: float(v) for k, v in zip(names, state.view_mix, strict=True)}
        aucs = {k: float(v) for k, v in zip(names, state.view_auc, strict=True)}
        best = int(np.argmax(state.view_auc))  # the view that ranks the verdicts best, and its weight so far
        favoured = (names[best], float(state.view_mix[best]))
    report(1.0, "re-ranked")
    return FeedbackResult(scores=scores, severity=severity, model=model, threshold=float(th.value),
                          threshold_explanation=th.explanation, seconds=time.perf_counter() - t0,
                          refitted=refitted, n_anomalies=len(anomalies), n_normals=len(normals),
                          state=state, base_scores=state.base_scores, favoured=favoured,
                          view_weights=weights, view_auc=aucs)


def top_rows(scores: np.ndarray, cand: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` candidates with the highest scores, best first (ties by row)."""
    if k <= 0 or not len(cand):
        return cand[:0]
    if len(cand) > k:
        cand = cand[np.argpartition(-scores[cand], k - 1)[:k]]
    return cand[np.lexsort((cand, -scores[cand]))]


def _explore(state: FeedbackState, scores: np.ndarray, cand: np.ndarray, size: int) -> np.ndarray:
    """Round robin over the current ranking, the detector's score and each view: each in turn gives its
    best candidate that shares less than ``explore_overlap`` of its forest regions with a confirmed
    normal or with a row already picked, so the batch covers several detectors and regions."""
    cols = [scores, state.base_z] + ([state.views[:, j] for j in range(state.views.shape[1])]
                                     if state.views is not None else [])
    depth = 5 * size
    lists = [top_rows(np.asarray(c, dtype=np.float64), cand, depth) for c in cols]
    limit = float(state.params["explore_overlap"]) * state.nodes.shape[1]
    normals = state.labelled[~state.labelled_y]
    against = state.nodes[normals[-200:]]
    picked: list[int] = []
    pos = [0] * len(lists)
    while len(picked) < size and any(p < len(li) for p, li in zip(pos, lists, strict=True)):
        for j, li in enumerate(lists):
            while pos[j] < len(li):
                i = int(li[pos[j]])
                pos[j] += 1
                if i in picked:
                    continue
                ref = np.vstack([against, state.nodes[picked]]) if picked else against
                if len(ref) and (ref == state.nodes[i]).sum(axis=1).max() >= limit:
                    continue
                picked.append(i)
                break
            if len(picked) >= size:
                break
    if len(picked) < size:  # every list exhausted by the overlap rule: fill from the ranking
        rest = np.setdiff1d(cand, picked)
        picked.extend(int(i) for i in top_rows(scores, rest, size - len(picked)))
    return np.asarray(picked, dtype=np.int64)


def _separated(state: FeedbackState) -> bool:
    """Whether the detector's score or a view already ranks the confirmed anomalies above the confirmed
    normals (AUC >= ``explore_separated``): then the queue knows where to look and exploring only costs
    reviews (mammography: 84.3 -> 87.3 at 100 reviews; kdd_test, whose views do not separate, keeps it)."""
    auc = state.view_auc
    return auc is not None and len(auc) > 0 and float(np.max(auc)) >= float(state.params["explore_separated"])


def _static_share(state: FeedbackState) -> float:
    """Share of the next batch taken from the static ranking: by the hit rates (Laplace-smoothed) of the
    rows only the static ranking picked and of those only the re-ranked one picked."""
    src = state.picked[state.labelled]
    only_s = (src & PICK_STATIC).astype(bool) & ~(src & PICK_FEEDBACK).astype(bool)
    only_f = (src & PICK_FEEDBACK).astype(bool) & ~(src & PICK_STATIC).astype(bool)
    y = state.labelled_y
    a = float(state.params["guard_prior"])
    ps = (y[only_s].sum() + 1.0) / (only_s.sum() + 1.0 + a)
    pf = (y[only_f].sum() + a) / (only_f.sum() + 1.0 + a)
    power = float(state.params["guard_power"])
    return float(ps ** power / (ps ** power + pf ** power))


def next_batch(state: FeedbackState, scores: np.ndarray, reviewed: np.ndarray, size: int) -> np.ndarray:
    """Row indices to review next (best first), from the last retrain's ``state`` and ``scores``
    (``FeedbackResult.state`` / ``.scores``): the window's "Next batch" (``Session.next_batch``) and
    ``simulate-review`` both take this. Records the picks' provenance in ``state.picked`` for the guard.

    - no verdicts yet: the top of the ranking;
    - normals confirmed but fewer than ``explore_until`` anomalies, and no view separates the verdicts yet
      (``_separated``): part of the batch explores (``_explore``) over detectors and regions;
    - only anomalies so far (``guard``): the static top, which has not missed yet;
    - otherwise (``guard``): a share of the batch from the static ranking (the detector's own scores)
      by how often its own picks have been anomalies against the re-ranked ranking's (``_static_share``),
      the rest from the re-ranked ranking; rows both would pick count for both.
    ``reviewed``: boolean mask (or row indices) of records that already have a verdict."""
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    mask = np.zeros(n, dtype=bool)
    r = np.asarray(reviewed)
    if r.dtype == bool:
        if len(r) != n:
            raise AnomalyDeskError(f"reviewed mask has {len(r)} rows but the ranking has {n}")
        mask |= r
    else:
        mask[r.astype(np.int64)] = True
    cand = np.flatnonzero(~mask)
    size = min(int(size), len(cand))
    if size <= 0:
        return cand[:0]
    cfg = state.params
    if state.picked is None or len(state.picked) != n:
        state.picked = np.zeros(n, dtype=np.uint8)
    n_pos = int(state.labelled_y.sum())
    n_neg = len(state.labelled_y) - n_pos
    static_top = top_rows(state.base_z, cand, size)
    fb_top = top_rows(scores, cand, size)
    if cfg["explore"] and n_neg and n_pos < int(cfg["explore_until"]) and not _separated(state):
        k_e = max(1, int(round(size * float(cfg["explore_share"]))))
        head = fb_top[: size - k_e]
        rest = np.setdiff1d(cand, head, assume_unique=True)
        picks = _explore(state, scores, rest, k_e)
        state.picked[picks] |= PICK_EXPLORE
        batch = np.concatenate([head, picks])
    elif cfg["guard"] and n_pos and not n_neg:
        batch = static_top  # every verdict an anomaly: the static top is working and there is no contrast yet
    elif cfg["guard"] and n_pos + n_neg:
        k_s = int(round(size * _static_share(state)))
        batch = list(dict.fromkeys(int(i) for i in static_top[:k_s]))
        for i in fb_top:
            if len(batch) >= size:
                break
            if int(i) not in batch:
                batch.append(int(i))
        for i in static_top:  # the re-ranked top was all taken by the static share
            if len(batch) >= size:
                break
            if int(i) not in batch:
                batch.append(int(i))
        batch = np.asarray(batch, dtype=np.int64)
        batch = batch[np.lexsort((batch, -scores[batch]))]
    else:
        batch = fb_top
    state.picked[np.intersect1d(batch, static_top)] |= PICK_STATIC
    state.picked[np.intersect1d(batch, fb_top)] |= PICK_FEEDBACK
    return batch


def batch_sources(state: FeedbackState, batch: np.ndarray) -> tuple[int, int]:
    """(exploration picks, picks only the static ranking made) among ``batch``, from ``state.picked``:
    what the queue's line says about how ``next_batch`` made the batch."""
    bits = state.picked[np.asarray(batch, dtype=np.int64)]
    explored = (bits & PICK_EXPLORE) > 0
    static_only = ((bits & PICK_STATIC) > 0) & ((bits & PICK_FEEDBACK) == 0) & ~explored
    return int(explored.sum()), int(static_only.sum())


def found_curve(labels_in_review_order) -> np.ndarray:
    """Cumulative anomalies confirmed after each review (True/"anomaly" = anomaly): the Review screen's
    found-per-review plot; with the label column, ``found_curve(labels[argsort(-base_scores)])`` is
    what the static ranking would have found."""
    v = np.asarray(labels_in_review_order)
    hits = (np.char.lower(v.astype(str)) == "anomaly") if v.dtype.kind in "UO" else v.astype(bool)
    return np.cumsum(hits, dtype=np.int64)
