"""Thresholds on anomaly scores (higher = more anomalous; a record is flagged when score >= threshold).

Every chooser returns a ``Threshold(value, method, explanation, flagged)`` whose explanation is a
sentence the GUI can show as is. Ways to choose:

- ``by_contamination(scores, share)`` / ``by_percentile(scores, pct)``: flag a known share.
- ``by_target_fpr(reference_scores, fpr)``: at most ``fpr`` of normal (training/reference) records
  flagged, as alibi-detect's ``infer_threshold``.
- ``automatic_threshold(scores, method="mad"|"iqr"|"otsu")``: no guess needed; a robust outlier rule
  on the score distribution (as PyThresh's MAD/IQR/Otsu methods).
- ``default_threshold(scores)``: what the product starts from (automatic, else a 1% queue; with a
  reference file of known-good rows, 1% of those flagged).
- ``best_f1_threshold(scores, labels)`` and ``min_cost_threshold(scores, labels, cost_missed=,
  cost_review=)``: from labels or verdicts.
- ``dynamic_threshold(scores, window=, percentile=)``: a trailing-window percentile per record for
  time-ordered data (returns one threshold per record).

And for the GUI's threshold panel: ``metrics_at_threshold(scores, labels, t)`` (precision, recall,
F1, confusion matrix, ROC and PR curves) and ``financial_impact(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError

#: Every way a threshold can be chosen, by the one name the engine, the GUI, projects and reports use.
METHODS: dict[str, str] = {
    "default": "product default (automatic, else top 1%; 1% of known-good rows with a reference file)",
    "percentile": "top share of records (percentile / expected contamination)",
    "contamination": "expected contamination",
    "target_fpr": "target false-positive rate on normal records",
    "automatic": "automatic (no guess needed)",
    "best_f1": "best F1 on labels/verdicts",
    "cost": "least cost (uses the money figures)",
    "manual": "set by hand",
    "dynamic": "sliding-window percentile (time-ordered file)",
}


@dataclass(frozen=True)
class Threshold:
    value: float
    method: str
    explanation: str
    flagged: int | None = None  # how many of the scores given are >= value


def _scores(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise AnomalyDeskError("no scores to choose a threshold from")
    if not np.isfinite(s).all():
        raise AnomalyDeskError("scores contain NaN or infinite values")
    return s


def _labels(labels, n: int) -> np.ndarray:
    y = np.asarray(labels).ravel()
    if y.dtype != bool:
        y = y.astype(np.float64) > 0.5
    if len(y) != n:
        raise AnomalyDeskError(f"{len(y)} labels for {n} scores")
    return y


def _count(s: np.ndarray, t: float) -> int:
    return int((s >= t).sum())


def by_percentile(scores, percentile: float) -> Threshold:
    """Flag the scores above the given percentile (0-100) of ``scores``."""
    s = _scores(scores)
    if not 0.0 <= percentile <= 100.0:
        raise AnomalyDeskError(f"percentile must be between 0 and 100, not {percentile}")
    t = float(np.percentile(s, percentile))
    k = _count(s, t)
    return Threshold(t, "percentile", f"{percentile:g}th percentile of the scores: flags {k} of {len(s)} "
                     f"records ({100.0 * k / len(s):.2f}%).", k)


def by_contamination(scores, contamination: float) -> Threshold:
    """Flag the expected share of anomalies (``contamination`` in (0, 0.5])."""
    if not 0.0 < contamination <= 0.5:
        raise AnomalyDeskError(f"contamination must be in (0, 0.5], not {contamination}")
    s = _scores(scores)
    k = max(1, int(round(contamination * len(s))))
    t = float(np.sort(s)[::-1][k - 1])
    return Threshold(t, "contamination", f"Expected {100 * contamination:g}% anomalies: the top {k} scores "
                     f"of {len(s)} are flagged (ties may add a few).", _count(s, t))


def by_target_fpr(reference_scores, fpr: float, scores=None) -> Threshold:
    """Threshold such that at most ``fpr`` of the reference (normal/training) records are flagged.
    ``scores``, when given, is what ``flagged`` counts on (defaults to the reference)."""
    ref = _scores(reference_scores)
    if not 0.0 < fpr < 1.0:
        raise AnomalyDeskError(f"target false-positive rate must be in (0, 1), not {fpr}")
    srt = np.sort(ref)
    k = int(np.floor(fpr * len(srt)))  # records allowed above the threshold
    t = float(np.nextafter(srt[len(srt) - k - 1], np.inf)) if k < len(srt) else float(srt[0])
    target = _scores(scores) if scores is not None else ref
    return Threshold(t, "target_fpr", f"At most {100 * fpr:g}% of the {len(ref)} reference records score "
                     f"above it ({_count(ref, t)} do).", _count(target, t))


def automatic_threshold(scores, method: str = "mad", k: float | None = None) -> Threshold:
    """No contamination guess: a robust outlier rule on the score distribution.

    - ``mad``: median + k * 1.4826 * MAD (k = 3.5 by default, Iglewicz-Hoaglin), robust to the
      anomalies themselves;
    - ``iqr``: Q3 + k * IQR (k = 1.5, Tukey's fence);
    - ``otsu``: the split of the score histogram that maximises between-class variance.
    """
    s = _scores(scores)
    if method == "mad":
        k = 3.5 if k is None else k
        med = float(np.median(s))
        mad = 1.4826 * float(np.median(np.abs(s - med)))
        if mad <= 0:
            mad = float(np.std(s)) or 1.0
        t = med + k * mad
        why = f"median + {k:g} x robust spread (MAD) of the scores"
    elif method == "iqr":
        k = 1.5 if k is None else k
        q1, q3 = np.percentile(s, [25, 75])
        t = float(q3 + k * (q3 - q1))
        why = f"upper quartile + {k:g} x interquartile range (Tukey's fence)"
    elif method == "otsu":
        hist, edges = np.histogram(s, bins=256)
        p = hist / hist.sum()
        mids = 0.5 * (edges[:-1] + edges[1:])
        w0 = np.cumsum(p)
        mu = np.cumsum(p * mids)
        with np.errstate(divide="ignore", invalid="ignore"):
            between = (mu[-1] * w0 - mu) ** 2 / (w0 * (1 - w0))
        between[~np.isfinite(between)] = -1
        t = float(edges[int(np.argmax(between)) + 1])
        why = "Otsu's split of the score histogram"
    else:
        raise AnomalyDeskError(f"unknown automatic threshold method '{method}' (mad, iqr, otsu)")
    n = _count(s, t)
    return Threshold(float(t), "automatic", f"Automatic ({why}): flags {n} of {len(s)} records "
                     f"({100.0 * n / len(s):.2f}%), no contamination guess needed.", n)


def default_threshold(scores, max_share: float = 0.05, fallback_share: float = 0.01,
                      reference_scores=None, reference_fpr: float = 0.01) -> Threshold:
    """The product's default: the automatic (MAD) rule; when it flags nothing or more than
    ``max_share`` of the records (too much to review), the top ``fallback_share`` instead.

    With ``reference_scores`` (the model's scores of a reference file of known-good rows, at least
    20 of them) the threshold is the one that flags ``reference_fpr`` of the known-good rows: the
    scored file may hold any share of anomalies (20% of KDD's test file, 69% of ECG5000's), which a
    rule on its own score distribution cannot know."""
    s = _scores(scores)
    if reference_scores is not None:
        ref = np.asarray(reference_scores, dtype=np.float64).reshape(-1)
        ref = ref[np.isfinite(ref)]
        if len(ref) >= 20:
            return by_target_fpr(ref, reference_fpr, s)
    th = automatic_threshold(s)
    share = float((s >= th.value).mean())
    if share > max_share or share == 0:
        th = by_contamination(s, fallback_share)
    return th


def _cut_table(s: np.ndarray, y: np.ndarray):
    """For each distinct score (descending): the threshold and TP/FP when flagging scores >= it."""
    order = np.argsort(-s, kind="stable")
    ss, yy = s[order], y[order]
    tp = np.cumsum(yy)
    fp = np.cumsum(~yy)
    last = np.r_[ss[1:] != ss[:-1], True]  # last position of each run of equal scores
    return ss[last], tp[last], fp[last]


def best_f1_threshold(scores, labels) -> Threshold:
    """The threshold with the best F1 on labelled records (labels True/1 = anomaly); with verdicts,
    pass the scores and verdicts of the reviewed records."""
    s = _scores(scores)
    y = _labels(labels, len(s))
    pos = int(y.sum())
    if pos == 0 or pos == len(y):
        raise AnomalyDeskError("best-F1 threshold needs both anomalies and normals among the labels")
    t, tp, fp = _cut_table(s, y)
    prec = tp / (tp + fp)
    rec = tp / pos
    f1 = np.where(tp > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    i = int(np.argmax(f1))
    return Threshold(float(t[i]), "best_f1", f"Best F1 on {len(y)} labelled records: F1 {f1[i]:.3f} "
                     f"(precision {prec[i]:.3f}, recall {rec[i]:.3f}).", int(tp[i] + fp[i]))


def min_cost_threshold(scores, labels, *, cost_missed: float, cost_review: float) -> Threshold:
    """The threshold with the least expected cost on labelled records: every flagged record is
    reviewed (``cost_review`` each) and every anomaly not flagged is lost (``cost_missed`` each)."""
    s = _scores(scores)
    y = _labels(labels, len(s))
    if cost_missed < 0 or cost_review < 0:
        raise AnomalyDeskError("costs must not be negative")
    pos = int(y.sum())
    t, tp, fp = _cut_table(s, y)
    cost = (pos - tp) * cost_missed + (tp + fp) * cost_review
    # flagging nothing is also an option
    t = np.r_[np.inf, t]
    cost = np.r_[pos * cost_missed, cost]
    i = int(np.argmin(cost))
    ratio = cost_missed / cost_review if cost_review > 0 else np.inf
    return Threshold(float(t[i]) if np.isfinite(t[i]) else float(s.max()) + 1.0, "cost",
                     f"Least expected cost on {len(y)} labelled records ({cost[i]:,.2f}) with a missed "
                     f"anomaly costing {ratio:.3g}x a review.", int(np.r_[0, tp + fp][i]))


def dynamic_threshold(scores, *, window: int = 1000, percentile: float = 99.0,
                      min_periods: int | None = None) -> np.ndarray:
    """Per-record threshold for time-ordered data: the ``percentile`` of the previous ``window``
    scores (the record itself excluded), so drifting score levels do not flood or starve the queue.
    The first records, before ``min_periods`` (default window // 10) scores exist, use the expanding
    history and the very first one the global percentile."""
    s = _scores(scores)
    if window < 2:
        raise AnomalyDeskError("the window must hold at least 2 records")
    min_periods = max(1, window // 10) if min_periods is None else min_periods
    past = pd.Series(s).shift(1)
    th = past.rolling(window, min_periods=min_periods).quantile(percentile / 100.0)
    early = past.expanding(min_periods=1).quantile(percentile / 100.0)
    th = th.fillna(early).fillna(float(np.percentile(s, percentile)))
    return th.to_numpy(dtype=np.float64)


def metrics_at_threshold(scores, labels, t, *, curves: bool = True) -> dict:
    """Precision/recall/F1, the confusion matrix and the ROC and PR curves for flagging scores >= t.
    ``t`` may be a scalar or one threshold per record (``dynamic_threshold``). ``curves=False`` skips
    the ROC/PR curves and AUCs (they do not depend on ``t``: the GUI computes them once, then only the
    counts while the threshold line moves)."""
    s = _scores(scores)
    y = _labels(labels, len(s))
    flagged = s >= np.asarray(t, dtype=np.float64)
    tp = int((flagged & y).sum())
    fp = int((flagged & ~y).sum())
    fn = int((~flagged & y).sum())
    tn = int((~flagged & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = {"threshold": float(np.mean(t)) if np.ndim(t) else float(t), "flagged": tp + fp,
           "precision": precision, "recall": recall, "f1": f1,
           "fpr": fp / (fp + tn) if fp + tn else 0.0,
           "tp": tp, "fp": fp, "fn": fn, "tn": tn, "confusion": [[tn, fp], [fn, tp]]}
    if curves and 0 < y.sum() < len(y):
        from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

        fpr, tpr, roc_t = roc_curve(y, s)
        prec, rec, pr_t = precision_recall_curve(y, s)
        out.update(aucroc=float(roc_auc_score(y, s)), aucpr=float(average_precision_score(y, s)),
                   roc={"fpr": fpr, "tpr": tpr, "thresholds": roc_t},
                   pr={"precision": prec, "recall": rec, "thresholds": pr_t})
    else:
        out.update(aucroc=None, aucpr=None, roc=None, pr=None)
    return out


def financial_impact(scores, labels, t, *, avg_loss: float, cost_per_review: float,
                     metrics: dict | None = None) -> dict:
    """Money view of a threshold: every flagged record is reviewed; a flagged anomaly's loss is
    caught, an unflagged one's is lost. ``metrics``: a ``metrics_at_threshold`` result for the same
    scores, labels and ``t``, to reuse its counts."""
    m = metrics if metrics is not None else metrics_at_threshold(scores, labels, t, curves=False)
    caught = m["tp"] * avg_loss
    review = m["flagged"] * cost_per_review
    missed = m["fn"] * avg_loss
    return {"money_caught": caught, "review_cost": review, "missed_loss": missed,
            "net_benefit": caught - review, "total_cost": review + missed,
            "flagged": m["flagged"], "tp": m["tp"], "fp": m["fp"], "fn": m["fn"]}


@dataclass(frozen=True)
class ThresholdRule:
    """How the threshold is chosen, kept apart from its value so the same rule can be re-applied to
    new scores (after a retrain, after reopening a project). ``params`` are plain JSON values:
    ``percentile``/``contamination``: share (0-0.5); ``target_fpr``: fpr; ``automatic``: kind
    (mad/iqr/otsu); ``cost``: cost_missed, cost_review; ``manual``: value and flagged (the count it
    flagged, kept when the scores change scale)."""

    method: str = "default"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in METHODS:
            raise AnomalyDeskError(f"unknown threshold method {self.method!r} ({', '.join(METHODS)})")

    def to_dict(self) -> dict:
        return {"method": self.method, "params": dict(self.params)}

    def describe(self) -> str:
        p = self.params
        if self.method in ("percentile", "contamination") and "share" in p:
            return f"top share {100 * float(p['share']):g}%"
        if self.method == "target_fpr" and "fpr" in p:
            return f"target false-positive rate {100 * float(p['fpr']):g}%"
        if self.method == "manual" and "value" in p:
            return f"set by hand at {float(p['value']):.4g}"
        return METHODS[self.method]


def apply_rule(rule: ThresholdRule, scores, *, reference_scores=None, labels=None, label_index=None,
               costs: tuple[float, float] | None = None) -> Threshold:
    """The threshold ``rule`` gives on ``scores``. ``labels`` (True = anomaly) are the label column's
    or the verdicts' for the records ``label_index`` (None = every record); ``costs`` are the money
    figures (cost of a missed anomaly, cost of a review) when the rule does not carry its own."""
    s = _scores(scores)
    p = rule.params
    m = rule.method
    if m == "default":
        return default_threshold(s, reference_scores=reference_scores)
    if m in ("percentile", "contamination"):
        return by_contamination(s, min(float(p.get("share", 0.01)), 0.5))
    if m == "automatic":
        return automatic_threshold(s, method=str(p.get("kind", "mad")))
    if m == "manual":
        value = float(p.get("value", np.inf))
        n = _count(s, value)
        return Threshold(value, "manual", f"Set by hand: flags {n:,} records ({100.0 * n / len(s):.2f}%).", n)
    if m == "target_fpr":
        fpr = float(p.get("fpr", 0.01))
        ref = reference_scores
        if ref is None and labels is not None:
            ls = s if label_index is None else s[np.asarray(label_index)]
            y = _labels(labels, len(ls))
            ref = ls[~y] if (~y).sum() >= 10 else None
        return by_target_fpr(s if ref is None else ref, fpr, scores=s)
    if m in ("best_f1", "cost"):
        if labels is None:
            raise AnomalyDeskError("this method needs labels or verdicts of both kinds")
        ls = s if label_index is None else s[np.asarray(label_index)]
        y = _labels(labels, len(ls))
        if y.all() or not y.any():
            raise AnomalyDeskError("this method needs labels or verdicts of both kinds")
        if m == "best_f1":
            return best_f1_threshold(ls, y)
        missed = float(p.get("cost_missed", costs[0] if costs else 5000.0))
        review = float(p.get("cost_review", costs[1] if costs else 25.0))
        return min_cost_threshold(ls, y, cost_missed=missed, cost_review=review)
    raise AnomalyDeskError(f"the threshold method {m!r} gives one threshold per record, not one value")
