"""``auto``: the default detector, an ensemble a non-expert can trust on tables it has never seen.

No single unsupervised detector wins everywhere: isolation forests miss rows in sparse pockets between
dense clusters, which nearest-neighbour distances see, and kNN misses what one extreme value gives
away. Members and their combination depend on the table and on whether the training rows are a clean
reference file (``RULES``). A table fitted on itself: the isolation forest and kNN, each scaled by
the reach of its training scores' tail, ``(s - median) / (q99.9 - median)``, and a row scores as its
most alarmed member (one member that sees the anomaly is enough; scaling by the tail, not the IQR,
keeps a member whose scores are heavy-tailed on this table from taking over every row). A clean
reference file: kNN and LOF, each score turned into its rank among the training rows (past the
highest, ``1 + log1p(excess / IQR)``, so rows beyond everything seen stay ordered), averaged. Mostly
categorical tables: the autoencoder and ECOD, robust z-scores ``(s - median) / IQR``, their mean.
Agreement weights (Spearman correlation of a member with the others on the training rows) weight
``combination="mean"`` and the per-feature contributions. The measurements behind
each choice are in docs/decisions.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from engine.detectors import torch_available
from engine.detectors.base import Detector, Explained, encoded_values
from engine.errors import TRAINING_CANCELLED, AnomalyDeskError, stop_if_asked

CATEGORICAL_SHARE = 0.5
#: (members, their parameters, standardisation, combination) by table type and by whether the training
#: rows are a clean reference file (``reference``). Numeric: the isolation forest and kNN, the most
#: alarmed decides; on clean rows the local-density pair kNN (5 neighbours, min-max scaled) and LOF.
#: Mostly categorical: the autoencoder (a cross-entropy term per categorical column learns which values
#: go together; trees and kernels over one-hot columns see no more than rare values, which ECOD scores)
#: and ECOD. Measured in docs/decisions.md.
RULES: dict[tuple[str, bool], tuple[tuple[str, ...], dict[str, dict], str, str]] = {
    ("numeric", False): (("iforest", "knn"), {}, "tail", "max"),
    ("numeric", True): (("knn", "lof"), {"knn": {"n_neighbors": 5, "scaling": "minmax"}}, "rank", "mean"),
    ("categorical", False): (("autoencoder", "ecod"), {}, "z", "median"),
    ("categorical", True): (("autoencoder", "ecod"), {}, "z", "mean"),
}
COMBINATIONS = ("median", "mean", "max")
STANDARDIZATIONS = ("z", "rank", "tail")
_QUANTILES = np.linspace(0.0, 1.0, 1001)
_TAIL = 999  # the index of the 99.9th percentile in _QUANTILES


def calibration(train_scores: np.ndarray) -> tuple[float, float, np.ndarray]:
    """What standardising a member needs from its training scores: their median, their IQR (the standard
    deviation, or 1, where the IQR is 0) and their 1001 quantiles."""
    ref = np.asarray(train_scores, dtype=np.float64)
    q25, med, q75 = np.percentile(ref, [25, 50, 75])
    scale = q75 - q25
    if not scale > 0:
        scale = float(np.std(ref)) or 1.0
    return float(med), float(scale), np.quantile(ref, _QUANTILES)


def standardise(scores: np.ndarray, center: float, scale: float, quantiles: np.ndarray, how: str) -> np.ndarray:
    """One member's scores on the ensemble's scale (``how``): ``z``, in IQRs above the training median;
    ``tail``, in units of the median's distance to the 99.9th percentile (a member flat up to its tail
    keeps the IQR); ``rank``, the share of training rows scored lower, past the highest
    ``1 + log1p(excess / IQR)`` so rows beyond everything seen stay ordered."""
    s = np.asarray(scores, dtype=np.float64)
    if how == "z":
        return (s - center) / scale
    if how == "tail":
        reach = quantiles[_TAIL] - center
        return (s - center) / (reach if reach > 0 else scale)
    last = np.r_[quantiles[1:] != quantiles[:-1], True]  # a repeated quantile takes its highest level
    r = np.interp(s, quantiles[last], _QUANTILES[last], left=0.0)
    return np.where(s > quantiles[-1], 1.0 + np.log1p(np.maximum(s - quantiles[-1], 0.0) / scale), r)


def categorical_share(fm) -> float:
    """Share of the original feature columns that are categorical (0 for a plain numeric matrix)."""
    n_cols = len(getattr(fm, "source_columns", []) or [])
    n_cat = len(getattr(fm, "categories", []) or [])
    return n_cat / n_cols if n_cols else 0.0


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def _member_histories(names, members) -> dict[str, Any]:
    """Training histories (loss curves) of the members that have one, as plain dicts."""
    out = {}
    for name, det in zip(names, members, strict=True):
        h = getattr(det, "history_", None)
        if h is not None:
            out[name] = h.to_dict() if hasattr(h, "to_dict") else h
    return out


class AutoDetector(Detector):
    """Several detectors' standardised scores, combined (see the module docstring).

    Parameters: ``members`` (names; default from RULES by table type and ``reference``: whether the
    training rows are a clean reference file), ``member_params``
    ({name: params}), ``combination`` ("median", "mean": weighted by ``weighting``, or "max"; default
    from RULES), ``standardize`` ("z", "rank" or "tail"; default from RULES),
    ``weighting`` ("agreement" or "equal"),
    ``agreement_rows`` (training rows used to measure agreement), ``max_fit_rows`` (rows the members
    learn from), ``seed``, ``device``,
    ``epochs`` (passed to deep members).
    """

    name: ClassVar[str] = "auto"
    _fitted_attr: ClassVar[str] = "members_"

    def __init__(self, members: list[str] | None = None, member_params: dict[str, dict] | None = None,
                 weighting: str = "agreement", combination: str | None = None, standardize: str | None = None,
                 reference: bool = False,
                 agreement_rows: int = 20000, max_fit_rows: int = 100_000, seed: int = 0, device: str = "auto",
                 epochs: int | None = None):
        if combination is not None and combination not in COMBINATIONS:
            raise AnomalyDeskError(f"auto: combination must be 'median', 'mean' or 'max', not {combination!r}")
        if standardize is not None and standardize not in STANDARDIZATIONS:
            raise AnomalyDeskError(f"auto: standardize must be 'z', 'rank' or 'tail', not {standardize!r}")
        if weighting not in ("agreement", "equal"):
            raise AnomalyDeskError(f"auto: weighting must be 'agreement' or 'equal', not {weighting!r}")
        self.combination, self.standardize, self.reference = combination, standardize, bool(reference)
        self.members = list(members) if members is not None else None
        self.member_params, self.weighting = dict(member_params or {}), weighting
        self.max_fit_rows = int(max_fit_rows)
        self.agreement_rows, self.seed, self.device, self.epochs = agreement_rows, seed, device, epochs

    # -- fitting ---------------------------------------------------------------------------------
    def _rule(self, fm=None):
        """The RULES entry for this table: categorical-heavy tables need torch for theirs."""
        kind = ("categorical" if fm is not None and categorical_share(fm) >= CATEGORICAL_SHARE and torch_available()
                else "numeric")
        return RULES[(kind, self.reference)]

    def _member_names(self, fm=None) -> list[str]:
        from engine.detectors import detector_class

        if self.members is not None:
            names = list(self.members)
        else:
            names = []
            for name in self._rule(fm)[0]:
                try:
                    detector_class(name)
                except AnomalyDeskError:
                    continue  # not in this build (yet)
                names.append(name)
        if "auto" in names or not names:
            raise AnomalyDeskError("auto: members must be a non-empty list of other detectors")
        return names

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        from engine.detectors import make_detector

        names = self._member_names(fm)
        _, rule_params, standardize, combination = self._rule(fm)
        self.standardize_ = self.standardize or standardize
        self.combination_ = self.combination or combination
        self.members_: list[Detector] = []
        n = len(names)
        # members learn from at most max_fit_rows rows (drawn at random), so the cost of a very large
        # file is in scoring it; calibration below still uses every row
        fit_fm, fit_weight = fm, sample_weight
        n_rows = fm.numeric.shape[0]
        if n_rows > self.max_fit_rows:
            rows = np.sort(np.random.default_rng(self.seed).choice(n_rows, size=self.max_fit_rows, replace=False))
            fit_fm = fm.subset(rows)
            fit_weight = None if sample_weight is None else np.asarray(sample_weight)[rows]
        for i, name in enumerate(names):
            params = dict(rule_params.get(name, {}) if self.members is None else {})
            params.update(self.member_params.get(name, {}))
            params.setdefault("seed", self.seed)
            params.setdefault("device", self.device)
            if self.epochs is not None and name in ("autoencoder", "vae"):
                params.setdefault("epochs", self.epochs)
            det = make_detector(name, **params)

            def member_progress(fraction, message="", _i=i, _name=name, **metrics):
                if progress:
                    progress((_i + float(fraction)) / n, f"{_name}: {message}", **metrics)

            stop_if_asked(should_stop, TRAINING_CANCELLED)
            det.fit(fit_fm, sample_weight=fit_weight, progress=member_progress, should_stop=should_stop)
            self.members_.append(det)
        self.member_names_ = names
        train = [det.decision_function(fm) for det in self.members_]
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        calibrated = [calibration(s if w is None else s[w > 0]) for s in train]
        self.center_ = np.array([c for c, _, _ in calibrated])
        self.scale_ = np.array([k for _, k, _ in calibrated])
        self.quantiles_ = np.vstack([q for _, _, q in calibrated])
        z = np.column_stack([standardise(s, c, k, q, "z") for s, (c, k, q) in zip(train, calibrated, strict=True)])
        self.weights_ = self._agreement_weights(z) if self.weighting == "agreement" else np.full(n, 1.0 / n)
        # the combined training scores, so the pipeline need not run every member over them again
        self.train_scores_ = self.combine(dict(zip(names, train, strict=True)))
        self.n_features_in_ = encoded_values(fm).shape[1] if hasattr(fm, "values") else None
        self.history_ = _member_histories(names, self.members_)
        if progress:
            progress(1.0, "ensemble fitted", weights=dict(zip(names, self.weights_.round(3).tolist(), strict=True)))
        return self

    def _agreement_weights(self, z: np.ndarray) -> np.ndarray:
        n_rows, n = z.shape
        if n == 1:
            return np.ones(1)
        rng = np.random.default_rng(self.seed)
        rows = rng.choice(n_rows, size=min(n_rows, self.agreement_rows), replace=False)
        zs = z[rows]
        agree = np.empty(n)
        for i in range(n):
            others = np.delete(zs, i, axis=1).mean(axis=1)
            agree[i] = max(_rank_correlation(zs[:, i], others), 0.0)
        if agree.sum() <= 0:
            return np.full(n, 1.0 / n)
        return agree / agree.sum()

    # -- scoring ---------------------------------------------------------------------------------
    def member_scores(self, fm) -> dict[str, np.ndarray]:
        """Raw scores per member, keyed by member name."""
        self._check_fitted()
        return {name: det.decision_function(fm) for name, det in zip(self.member_names_, self.members_, strict=True)}

    def standardized(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Members' scores on one scale (``standardise``), one column per member."""
        return np.column_stack([standardise(raw[name], c, k, q, self.standardize_) for name, c, k, q in
                                zip(self.member_names_, self.center_, self.scale_, self.quantiles_, strict=True)])

    def combine(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        z = self.standardized(raw)
        if self.combination_ == "max":  # the most alarmed member with a say decides
            return z[:, self.weights_ > 0].max(axis=1)
        if self.combination_ == "median":  # one member, wrong either way, cannot move it past the others
            return np.median(z, axis=1)
        return z @ self.weights_

    def decision_function(self, fm) -> np.ndarray:
        return self.combine(self.member_scores(fm))

    def feature_contributions(self, fm) -> np.ndarray:
        return self.score_and_explain(fm, expected=False).contributions

    def score_and_explain(self, fm, expected: bool = True) -> Explained:
        """Each member scores and explains the rows once; the ensemble's score, contributions and
        expected values are made from those (the same as ``score_samples``, ``feature_contributions``
        and ``expected_values`` one by one, which ran every member two or three times)."""
        self._check_fitted()
        parts = [det.score_and_explain(fm, expected=expected) for det in self.members_]
        raw = {name: part.scores for name, part in zip(self.member_names_, parts, strict=True)}
        contributions = self._mixed_contributions(raw, [part.contributions for part in parts])
        best = None
        if expected:
            for w, part in sorted(zip(self.weights_, parts, strict=True), key=lambda t: -t[0]):
                if part.expected is not None and w > 0:
                    best = part.expected
                    break
        return Explained(scores=self.combine(raw), contributions=contributions, expected=best, members=raw)

    def _mixed_contributions(self, raw: dict[str, np.ndarray], member_contributions: list[np.ndarray]):
        """Members' column shares, averaged with weight = member weight x how far above typical the
        member scores the row (members that flag a row explain it)."""
        z = self.standardized(raw)
        mix = np.clip(z, 0.0, None) * self.weights_[None, :]
        none = mix.sum(axis=1) <= 0
        mix[none] = self.weights_
        total = None
        for i, contrib in enumerate(member_contributions):
            if not self.weights_[i] > 0:
                continue
            part = contrib * mix[:, [i]]
            total = part if total is None else total + part
        sums = total.sum(axis=1, keepdims=True)
        return np.divide(total, sums, out=np.full_like(total, 1.0 / max(total.shape[1], 1)), where=sums > 0)

    def expected_values(self, fm):
        best = None
        for w, det in sorted(zip(self.weights_, self.members_, strict=True), key=lambda t: -t[0]):
            if best is None:
                exp = det.expected_values(fm)
                if exp is not None and w > 0:
                    best = exp
        return best

    # -- persistence -----------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        members_meta, arrays = [], {}
        for i, (name, det) in enumerate(zip(self.member_names_, self.members_, strict=True)):
            meta, arr = det.get_state()
            members_meta.append({"name": name, "meta": meta})
            for key, value in arr.items():
                arrays[f"m{i}.{key}"] = value
        arrays["center"], arrays["scale"], arrays["weights"] = self.center_, self.scale_, self.weights_
        arrays["quantiles"] = self.quantiles_
        return {"params": self.get_params(), "members": members_meta, "n_features_in_": self.n_features_in_,
                "combination_": self.combination_, "standardize_": self.standardize_}, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        from engine.detectors import detector_class

        det = cls(**meta["params"])
        members_meta = meta["members"]
        if not isinstance(members_meta, list) or not members_meta:
            raise AnomalyDeskError("auto: the model lists no members")
        det.member_names_, det.members_ = [], []
        for i, m in enumerate(members_meta):
            name = str(m["name"])
            if name == "auto":
                raise AnomalyDeskError("auto: a member cannot be another ensemble")
            prefix = f"m{i}."
            sub = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            det.members_.append(detector_class(name).from_state(m["meta"], sub))
            det.member_names_.append(name)
        n = len(det.members_)
        det.center_ = np.asarray(arrays["center"], dtype=np.float64)
        det.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        det.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
        if det.center_.shape != (n,) or det.scale_.shape != (n,) or det.weights_.shape != (n,):
            raise AnomalyDeskError("auto: calibration arrays do not match the number of members")
        # bundles written before the rule was resolved per table stored it in the params (z-scores)
        det.combination_ = meta.get("combination_") or meta["params"].get("combination") or "median"
        det.standardize_ = meta.get("standardize_") or meta["params"].get("standardize") or "z"
        if det.combination_ not in COMBINATIONS or det.standardize_ not in STANDARDIZATIONS:
            raise AnomalyDeskError("auto: the model names an unknown combination or standardisation")
        det.quantiles_ = np.asarray(arrays.get("quantiles", np.zeros((n, 0))), dtype=np.float64)
        if det.standardize_ in ("rank", "tail") and (det.quantiles_.shape != (n, _QUANTILES.size)
                                           or np.any(np.diff(det.quantiles_, axis=1) < 0)):
            raise AnomalyDeskError("auto: the members' score quantiles are missing or out of order")
        det.n_features_in_ = meta.get("n_features_in_")
        det.history_ = _member_histories(det.member_names_, det.members_)
        return det
