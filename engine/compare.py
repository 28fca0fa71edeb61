"""Model lab: train several detectors on the same data and compare them with evidence.

- ``compare_detectors(frame, schema, detectors, ...)``: fit each detector in turn (same training rows,
  same seed) through ``engine.pipeline.AnomalyModel``, score the same rows, and return per detector
  AUCROC/AUCPR, precision/recall/F1 at the product's default threshold
  (``engine.thresholds.default_threshold``), fit and score time, parameter count and model size, ROC
  and PR curves; and where the detectors disagree (records flagged by one and not by another).
- ``contamination_study(frame, schema, labels, detector, shares=...)``: retrain with a share of known
  anomalies mixed into the training rows and measure AUCROC on held-out rows at each share.
- ``replay(...)`` / ``replay_scores(...)``: play a labelled file back in arrival order through fitted
  detectors and yield running TP/FP/FN/TN, precision, recall and accuracy.

Long jobs take ``progress(fraction, message, **metrics)`` and ``should_stop()`` like the rest of the
engine; a stop request raises ``engine.errors.Cancelled``. No Qt here.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError, Cancelled, stop_if_asked
from engine.safe_json import jsonable
from engine.schema import Schema

CANCELLED = "the comparison was cancelled"
DEFAULT_SHARES: tuple[float, ...] = (0.0, 0.05, 0.10, 0.30, 0.50)
CURVE_POINTS = 200  # curves are thinned to about this many points for plots and JSON

ProgressCallback = Callable[..., None]
StopCallback = Callable[[], bool]


@dataclass
class DetectorRun:
    """One detector's results in a comparison (``model`` is the fitted AnomalyModel)."""

    name: str
    scores: np.ndarray
    threshold: float
    threshold_method: str
    flagged: np.ndarray  # bool per scored row: score >= threshold
    fit_seconds: float
    score_seconds: float
    parameters: int  # numbers in the detector's saved state
    model_bytes: int  # bytes of the detector's saved state (arrays + JSON metadata)
    device: str = "cpu"
    metrics: dict[str, Any] | None = None  # aucroc, aucpr, precision, recall, f1, tp, fp, fn, tn, best_f1
    roc: dict[str, np.ndarray] | None = None  # fpr, tpr
    pr: dict[str, np.ndarray] | None = None  # recall, precision
    model: Any = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """Plain JSON-able figures (no arrays but the thinned curves)."""
        out: dict[str, Any] = {"detector": self.name, "fit_seconds": self.fit_seconds,
                               "score_seconds": self.score_seconds, "parameters": self.parameters,
                               "model_bytes": self.model_bytes, "device": self.device,
                               "threshold": self.threshold, "threshold_method": self.threshold_method,
                               "flagged": int(self.flagged.sum())}
        for key in ("aucroc", "aucpr", "precision", "recall", "f1", "best_f1", "tp", "fp", "fn", "tn"):
            out[key] = None if self.metrics is None else self.metrics.get(key)
        if self.roc is not None:
            out["roc"] = {k: [round(float(v), 6) for v in a] for k, a in self.roc.items()}
        if self.pr is not None:
            out["pr"] = {k: [round(float(v), 6) for v in a] for k, a in self.pr.items()}
        return out


@dataclass(frozen=True)
class Disagreement:
    """Records flagged by ``a`` and not by ``b`` (``only_a``) and the other way round (``only_b``)."""

    a: str
    b: str
    only_a: np.ndarray  # row indices, ascending
    only_b: np.ndarray
    both: int
    neither: int

    def summary(self, with_rows: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"a": self.a, "b": self.b, "only_a": int(len(self.only_a)),
                               "only_b": int(len(self.only_b)), "both": self.both, "neither": self.neither}
        if with_rows:
            out["rows_only_a"] = [int(i) for i in self.only_a]
            out["rows_only_b"] = [int(i) for i in self.only_b]
        return out


@dataclass
class Comparison:
    runs: list[DetectorRun]
    disagreements: list[Disagreement]
    rows: int
    train_rows: int
    n_labelled: int  # rows with a label or verdict (0: no metrics)
    n_anomalies: int
    label_source: str = ""
    failures: dict[str, str] = field(default_factory=dict)  # detector -> why it could not be compared

    def run(self, name: str) -> DetectorRun:
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(name)

    def disagreement(self, a: str, b: str) -> Disagreement:
        for d in self.disagreements:
            if (d.a, d.b) == (a, b):
                return d
            if (d.b, d.a) == (a, b):
                return Disagreement(a, b, d.only_b, d.only_a, d.both, d.neither)
        raise KeyError((a, b))

    def summary(self, with_rows: bool = True) -> dict[str, Any]:
        return {"rows": self.rows, "train_rows": self.train_rows, "n_labelled": self.n_labelled,
                "n_anomalies": self.n_anomalies, "label_source": self.label_source,
                "detectors": [r.summary() for r in self.runs],
                "disagreements": [d.summary(with_rows) for d in self.disagreements],
                "failures": dict(self.failures)}


def _thin(x: np.ndarray, y: np.ndarray, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= points:
        return np.asarray(x, float), np.asarray(y, float)
    idx = np.unique(np.r_[np.linspace(0, len(x) - 1, points).astype(np.int64), len(x) - 1])
    return np.asarray(x, float)[idx], np.asarray(y, float)[idx]


def state_size(detector) -> tuple[int, int]:
    """(numbers in the saved state, bytes of the saved state) of a fitted detector."""
    meta, arrays = detector.get_state()
    values = 0
    nbytes = len(json.dumps(jsonable(meta)).encode())
    for a in arrays.values():
        a = np.asarray(a)
        values += int(a.size)
        nbytes += int(a.nbytes)
    return values, nbytes


def _finite(scores: np.ndarray) -> np.ndarray:
    """Scores a threshold can be chosen from: NaN ranks lowest, +/-inf as the extreme finite scores."""
    ok = np.isfinite(scores)
    if ok.all():
        return scores
    if not ok.any():
        return np.zeros_like(scores)
    lo, hi = float(scores[ok].min()), float(scores[ok].max())
    return np.where(np.isnan(scores), lo, np.clip(scores, lo, hi))


def _labels_for(labels, labelled, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(y over the labelled rows, their indices) from a full label vector or verdicts on some rows."""
    if labels is None:
        return None, None
    y = np.asarray(labels).astype(bool).reshape(-1)
    if labelled is None:
        if len(y) != n:
            raise AnomalyDeskError(f"{len(y)} labels for {n} rows")
        idx = np.arange(n)
    else:
        idx = np.asarray(labelled, dtype=np.int64).reshape(-1)
        if len(idx) != len(y):
            raise AnomalyDeskError(f"{len(y)} labels for {len(idx)} labelled rows")
    if y.all() or not y.any():
        return None, None  # one class only: no ROC to draw
    return y, idx


def measure(scores: np.ndarray, y: np.ndarray | None, idx: np.ndarray | None, threshold: float):
    """Metrics, ROC and PR of ``scores`` against labels ``y`` on rows ``idx``, flagging >= threshold."""
    if y is None:
        return None, None, None
    from engine.thresholds import best_f1_threshold, metrics_at_threshold

    s = np.nan_to_num(np.asarray(scores, dtype=np.float64)[idx], nan=-np.finfo(np.float64).max)
    m = metrics_at_threshold(s, y, threshold, curves=True)
    roc = pr = None
    if m.get("roc") is not None:
        fpr, tpr = _thin(m["roc"]["fpr"], m["roc"]["tpr"])
        roc = {"fpr": fpr, "tpr": tpr}
        rec, prec = _thin(m["pr"]["recall"][::-1], m["pr"]["precision"][::-1])
        pr = {"recall": rec, "precision": prec}
    keep = {k: m[k] for k in ("aucroc", "aucpr", "precision", "recall", "f1", "tp", "fp", "fn", "tn", "fpr")}
    # the best this detector's ranking can do at any threshold (chosen with the labels: an upper bound)
    best = best_f1_threshold(s, y)
    keep["best_f1"] = metrics_at_threshold(s, y, best.value, curves=False)["f1"]
    keep["best_f1_threshold"] = best.value
    return keep, roc, pr


def disagreements(flags: dict[str, np.ndarray]) -> list[Disagreement]:
    """For every pair of detectors: the records one flags and the other does not."""
    out = []
    for a, b in itertools.combinations(flags, 2):
        fa, fb = flags[a], flags[b]
        out.append(Disagreement(a, b, np.flatnonzero(fa & ~fb), np.flatnonzero(fb & ~fa),
                                int((fa & fb).sum()), int((~fa & ~fb).sum())))
    return out


def compare_detectors(frame: pd.DataFrame, schema: Schema, detectors: Sequence[str], *,
                      train_frame: pd.DataFrame | None = None, labels=None, labelled=None,
                      label_source: str = "", params: dict[str, dict] | None = None, seed: int = 0,
                      device: str = "auto", progress: ProgressCallback | None = None,
                      should_stop: StopCallback | None = None, keep_going: bool = False) -> Comparison:
    """Fit every detector on ``train_frame`` (default ``frame``), score ``frame`` and compare.

    ``labels``: True = anomaly, for every row of ``frame``, or for the rows ``labelled`` (verdicts).
    ``params``: per-detector parameters. ``keep_going``: a detector that fails is recorded in
    ``failures`` and the others carry on (else its error is raised)."""
    from engine.pipeline import AnomalyModel
    from engine.thresholds import default_threshold

    detectors = list(dict.fromkeys(detectors))
    if not detectors:
        raise AnomalyDeskError("choose at least one detector to compare")
    train = frame if train_frame is None else train_frame
    y, idx = _labels_for(labels, labelled, len(frame))
    params = params or {}
    runs: list[DetectorRun] = []
    failures: dict[str, str] = {}
    k = len(detectors)
    for i, name in enumerate(detectors):
        stop_if_asked(should_stop, CANCELLED)
        base = i / k

        def fit_progress(fraction, message="", _base=base, _name=name, **metrics):
            if progress:
                progress(_base + 0.9 * float(fraction) / k, f"{_name}: {message}", detector=_name, **metrics)

        try:
            model = AnomalyModel(detector=name, params=dict(params.get(name, {})), device=device, seed=seed)
            model.fit(train, schema, progress=fit_progress, should_stop=should_stop,
                      known_good=train_frame is not None)
            stop_if_asked(should_stop, CANCELLED)
            if progress:
                progress(base + 0.92 / k, f"{name}: scoring {len(frame):,} rows", detector=name)
            start = time.perf_counter()
            scores = np.asarray(model.score(frame).scores, dtype=np.float64)
            score_seconds = time.perf_counter() - start
            # trained on known-good rows: flag 1% of them, whatever share of the scored file is anomalous
            reference = model.train_scores_ if train_frame is not None else None
            th = default_threshold(_finite(scores), reference_scores=reference)
            values, nbytes = state_size(model.detector_)
        except Cancelled:
            raise
        except AnomalyDeskError as exc:
            if not keep_going:
                raise
            failures[name] = str(exc)
            continue
        m, roc, pr = measure(scores, y, idx, th.value)
        runs.append(DetectorRun(name=name, scores=scores, threshold=float(th.value), threshold_method=th.method,
                                flagged=scores >= th.value, fit_seconds=float(model.fit_seconds_),
                                score_seconds=float(score_seconds), parameters=values, model_bytes=nbytes,
                                device=str(model.device_), metrics=m, roc=roc, pr=pr, model=model))
        if progress:
            progress((i + 1) / k, f"{name}: done", detector=name,
                     aucroc=None if m is None else m["aucroc"])
    if not runs:
        raise AnomalyDeskError("no detector could be compared: " +
                               "; ".join(f"{n}: {why}" for n, why in failures.items()))
    return Comparison(runs=runs, disagreements=disagreements({r.name: r.flagged for r in runs}),
                      rows=int(len(frame)), train_rows=int(len(train)),
                      n_labelled=0 if y is None else int(len(y)), n_anomalies=0 if y is None else int(y.sum()),
                      label_source=label_source, failures=failures)


# ----------------------------------------------------------------------------------------------
# contamination study
# ----------------------------------------------------------------------------------------------
@dataclass
class ContaminationPoint:
    share: float  # requested share of anomalies among the training rows
    anomalies: int  # anomalies mixed in
    normals: int
    aucroc: float | None = None
    aucpr: float | None = None
    fit_seconds: float | None = None
    skipped: str | None = None  # why this share was not run

    def summary(self) -> dict[str, Any]:
        return {"share": self.share, "anomalies": self.anomalies, "normals": self.normals,
                "aucroc": self.aucroc, "aucpr": self.aucpr, "fit_seconds": self.fit_seconds,
                "skipped": self.skipped}


@dataclass
class ContaminationStudy:
    detector: str
    points: list[ContaminationPoint]
    train_rows: int  # training rows at every share (normals + anomalies)
    anomaly_pool: int  # known anomalies available to mix in
    eval_rows: int
    eval_anomalies: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"detector": self.detector, "train_rows": self.train_rows, "anomaly_pool": self.anomaly_pool,
                "eval_rows": self.eval_rows, "eval_anomalies": self.eval_anomalies,
                "points": [p.summary() for p in self.points], "notes": list(self.notes)}


def contamination_study(frame: pd.DataFrame, schema: Schema, labels, detector: str, *,
                        shares: Sequence[float] = DEFAULT_SHARES, train_frame: pd.DataFrame | None = None,
                        params: dict | None = None, seed: int = 0, device: str = "auto",
                        max_train_rows: int | None = None, progress: ProgressCallback | None = None,
                        should_stop: StopCallback | None = None) -> ContaminationStudy:
    """AUCROC against the share of known anomalies in the training rows.

    The known anomalies of ``frame`` are split in two (seeded): half is the pool mixed into training,
    the other half is scored with the normal rows that were never trained on, so every share is
    measured on the same held-out rows. Normal training rows come from ``train_frame`` (a reference
    file of known-good rows) when given, else from half of ``frame``'s normal rows. The number of
    training rows is the same at every share (anomalies replace normals); a share that needs more
    anomalies than the pool holds is skipped, and ``notes`` says so."""
    from engine.evaluation import aucpr, aucroc
    from engine.pipeline import AnomalyModel

    y = np.asarray(labels).astype(bool).reshape(-1)
    if len(y) != len(frame):
        raise AnomalyDeskError(f"{len(y)} labels for {len(frame)} rows")
    shares = [float(s) for s in shares]
    bad = [s for s in shares if not 0.0 <= s < 1.0]
    if bad:
        raise AnomalyDeskError(f"contamination shares must be between 0% and 100% (exclusive), not "
                               f"{', '.join(f'{100 * s:g}%' for s in bad)}")
    rng = np.random.default_rng(seed)
    anomalies = rng.permutation(np.flatnonzero(y))
    normals = rng.permutation(np.flatnonzero(~y))
    if len(anomalies) < 2 or len(normals) < 2:
        raise AnomalyDeskError(f"the contamination study needs at least 2 anomalies and 2 normal rows with "
                               f"labels; found {len(anomalies)} and {len(normals)}")
    pool, held_anom = anomalies[: len(anomalies) // 2], anomalies[len(anomalies) // 2:]
    if train_frame is not None:
        normal_train = train_frame.reset_index(drop=True)
        held_norm = normals
    else:
        half = len(normals) // 2
        normal_train = frame.iloc[normals[:half]].reset_index(drop=True)
        held_norm = normals[half:]
    n_train = len(normal_train)
    if max_train_rows is not None and n_train > max_train_rows:
        n_train = int(max_train_rows)
    eval_idx = np.sort(np.r_[held_norm, held_anom])
    eval_frame, eval_y = frame.iloc[eval_idx], y[eval_idx]
    pool_frame = frame.iloc[pool].reset_index(drop=True)
    notes = [f"{len(pool)} of the {len(anomalies)} labelled anomalies are mixed into training; "
             f"AUCROC is measured on the other {len(held_anom)} and {len(held_norm)} normal rows never trained on."]
    points: list[ContaminationPoint] = []
    todo = len(shares)
    for i, share in enumerate(shares):
        stop_if_asked(should_stop, CANCELLED)
        k = int(round(share * n_train))
        point = ContaminationPoint(share=share, anomalies=k, normals=n_train - k)
        points.append(point)
        if k > len(pool):
            point.skipped = (f"not enough anomalies: {100 * share:g}% of {n_train} training rows needs {k}, "
                             f"only {len(pool)} are available")
            notes.append(point.skipped)
            continue
        if n_train - k < 2:
            point.skipped = f"{100 * share:g}% leaves fewer than 2 normal training rows"
            notes.append(point.skipped)
            continue
        pick_norm = rng.permutation(len(normal_train))[: n_train - k]
        pick_anom = rng.permutation(len(pool))[:k]
        train = pd.concat([normal_train.iloc[pick_norm], pool_frame.iloc[pick_anom]], ignore_index=True)
        train = train.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)

        def fit_progress(fraction, message="", _i=i, _share=share, **metrics):
            if progress:
                progress((_i + 0.9 * float(fraction)) / todo, f"{100 * _share:g}% anomalies: {message}",
                         share=_share, **metrics)

        model = AnomalyModel(detector=detector, params=dict(params or {}), device=device, seed=seed)
        model.fit(train, schema, progress=fit_progress, should_stop=should_stop)
        stop_if_asked(should_stop, CANCELLED)
        s = model.score(eval_frame).scores
        point.aucroc, point.aucpr = aucroc(eval_y, s), aucpr(eval_y, s)
        point.fit_seconds = float(model.fit_seconds_)
        if progress:
            progress((i + 1) / todo, f"{100 * share:g}% anomalies: AUCROC {point.aucroc:.3f}", share=share,
                     aucroc=point.aucroc)
    return ContaminationStudy(detector=detector, points=points, train_rows=n_train, anomaly_pool=len(pool),
                              eval_rows=int(len(eval_idx)), eval_anomalies=int(eval_y.sum()), notes=notes)


# ----------------------------------------------------------------------------------------------
# streaming playback
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Counters:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def seen(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.seen if self.seen else 0.0

    def summary(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "precision": self.precision,
                "recall": self.recall, "accuracy": self.accuracy}


@dataclass(frozen=True)
class PlaybackStep:
    seen: int  # records played so far
    total: int
    rows: np.ndarray  # the row indices that arrived in this step
    counters: dict[str, Counters]  # per detector, running


def arrival_order(frame: pd.DataFrame, schema: Schema | None = None) -> np.ndarray:
    """Rows in arrival order: by the first mostly-valid datetime column, else file order."""
    from engine.schema import Role

    if schema is not None:
        for name in schema.by_role(Role.DATETIME):
            if name in frame.columns:
                t = pd.to_datetime(frame[name], errors="coerce")
                if t.notna().mean() > 0.9:
                    return np.argsort(t.to_numpy(dtype="datetime64[ns]"), kind="stable")
    return np.arange(len(frame))


def _steps(n: int, step: int) -> Iterator[tuple[int, int]]:
    if step < 1:
        raise AnomalyDeskError(f"the playback step must be at least 1 record, not {step}")
    for start in range(0, n, step):
        yield start, min(n, start + step)


def replay_scores(scores: dict[str, np.ndarray], labels, thresholds: dict[str, float], *,
                  order: np.ndarray | None = None, step: int = 100) -> Iterator[PlaybackStep]:
    """Play scored rows back in ``order`` (default file order), ``step`` rows at a time, yielding the
    running confusion counts of each detector flagging score >= its threshold."""
    y = np.asarray(labels).astype(bool).reshape(-1)
    n = len(y)
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    flags = {name: np.asarray(s, dtype=np.float64) >= float(thresholds[name]) for name, s in scores.items()}
    totals = {name: np.zeros(4, dtype=np.int64) for name in flags}
    for start, stop in _steps(len(order), step):
        rows = order[start:stop]
        yy = y[rows]
        out = {}
        for name, f in flags.items():
            ff = f[rows]
            t = totals[name]
            t += [int((ff & yy).sum()), int((ff & ~yy).sum()), int((~ff & yy).sum()), int((~ff & ~yy).sum())]
            out[name] = Counters(*(int(v) for v in t))
        yield PlaybackStep(seen=stop, total=len(order), rows=rows, counters=out)


def replay(frame: pd.DataFrame, models: dict[str, Any], labels, thresholds: dict[str, float], *,
           order: np.ndarray | None = None, step: int = 100,
           should_stop: StopCallback | None = None) -> Iterator[PlaybackStep]:
    """Stream ``frame`` in arrival order through fitted models (``AnomalyModel``), ``step`` rows at a
    time: each chunk is scored when it arrives, and the running counters are yielded."""
    y = np.asarray(labels).astype(bool).reshape(-1)
    if len(y) != len(frame):
        raise AnomalyDeskError(f"{len(y)} labels for {len(frame)} rows")
    order = np.arange(len(frame)) if order is None else np.asarray(order, dtype=np.int64)
    totals = {name: np.zeros(4, dtype=np.int64) for name in models}
    for start, stop in _steps(len(order), step):
        stop_if_asked(should_stop, CANCELLED)
        rows = order[start:stop]
        chunk = frame.iloc[rows]
        yy = y[rows]
        out = {}
        for name, model in models.items():
            ff = np.asarray(model.score(chunk).scores, dtype=np.float64) >= float(thresholds[name])
            t = totals[name]
            t += [int((ff & yy).sum()), int((ff & ~yy).sum()), int((~ff & yy).sum()), int((~ff & ~yy).sum())]
            out[name] = Counters(*(int(v) for v in t))
        yield PlaybackStep(seen=stop, total=len(order), rows=rows, counters=out)
