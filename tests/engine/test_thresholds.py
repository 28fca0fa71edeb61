"""Thresholds on known score distributions."""

from __future__ import annotations

import numpy as np
import pytest

from engine import thresholds as th
from engine.errors import AnomalyDeskError


@pytest.fixture(scope="module")
def gaussian():
    return np.random.default_rng(0).normal(0.0, 1.0, 200_000)


def test_percentile_and_contamination(gaussian):
    t = th.by_percentile(gaussian, 99.0)
    assert t.value == pytest.approx(2.326, abs=0.03)
    assert t.flagged == pytest.approx(2000, abs=5)
    c = th.by_contamination(gaussian, 0.05)
    assert c.value == pytest.approx(1.645, abs=0.03) and c.flagged == 10_000
    with pytest.raises(AnomalyDeskError):
        th.by_contamination(gaussian, 0.0)
    with pytest.raises(AnomalyDeskError):
        th.by_percentile(gaussian, 101)


def test_target_fpr_on_reference_scores(gaussian):
    ref, new = gaussian[:100_000], gaussian[100_000:]
    t = th.by_target_fpr(ref, 0.01, scores=new)
    assert (ref >= t.value).mean() <= 0.01
    assert (ref >= t.value).mean() > 0.0099
    assert t.flagged == pytest.approx(1000, rel=0.1)  # the same distribution: about 1% flagged
    assert "1%" in t.explanation


def test_automatic_thresholds_need_no_guess():
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(0, 1, 10_000), rng.normal(12, 0.5, 100)]
    for method in ("mad", "iqr", "otsu"):
        t = th.automatic_threshold(scores, method=method)
        flagged = scores >= t.value
        assert flagged[-100:].all(), method  # every planted outlier
        assert flagged[:10_000].mean() < 0.01, method  # and few normals
    assert th.automatic_threshold(scores).value == pytest.approx(3.5, abs=0.1)  # median + 3.5 MAD
    with pytest.raises(AnomalyDeskError):
        th.automatic_threshold(scores, method="magic")
    with pytest.raises(AnomalyDeskError):
        th.automatic_threshold([1.0, np.nan])


def test_best_f1_on_separable_and_overlapping_labels():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9, 0.95])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    t = th.best_f1_threshold(scores, labels)
    assert t.value == 0.8 and t.flagged == 3 and "F1 1.000" in t.explanation
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(1000, bool), np.ones(50, bool)]
    s = np.r_[rng.normal(0, 1, 1000), rng.normal(3, 1, 50)]
    t = th.best_f1_threshold(s, y)
    m = th.metrics_at_threshold(s, y, t.value)

    def f1(v):
        tp, fp = (s[y] >= v).sum(), (s[~y] >= v).sum()
        return 2 * tp / (2 * tp + fp + (len(y[y]) - tp))

    best = max(f1(v) for v in np.linspace(-1, 5, 601))
    assert m["f1"] >= best - 1e-9
    with pytest.raises(AnomalyDeskError):
        th.best_f1_threshold(s, np.zeros_like(y))


def test_min_cost_moves_with_the_cost_ratio():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(1000, bool), np.ones(50, bool)]
    s = np.r_[rng.normal(0, 1, 1000), rng.normal(2.5, 1, 50)]
    dear_misses = th.min_cost_threshold(s, y, cost_missed=500.0, cost_review=1.0)
    dear_reviews = th.min_cost_threshold(s, y, cost_missed=2.0, cost_review=1.0)
    assert dear_misses.value < dear_reviews.value
    assert (s[y] >= dear_misses.value).mean() > 0.95
    # when a review costs more than any loss, flag nothing
    none = th.min_cost_threshold(s, y, cost_missed=1.0, cost_review=10.0)
    assert none.flagged == 0 and (s >= none.value).sum() == 0


def test_dynamic_threshold_follows_a_level_shift():
    rng = np.random.default_rng(4)
    scores = np.r_[rng.normal(0, 1, 3000), rng.normal(10, 1, 3000)]
    t = th.dynamic_threshold(scores, window=500, percentile=99.0)
    assert t.shape == scores.shape and np.isfinite(t).all()
    assert t[2900] == pytest.approx(2.33, abs=0.4)
    assert t[5900] == pytest.approx(12.33, abs=0.4)
    assert (scores[3600:] >= t[3600:]).mean() < 0.03  # the new level does not flood the queue
    # a record's own score never sets its threshold
    spike = np.r_[np.zeros(100), 50.0]
    assert th.dynamic_threshold(spike, window=50)[-1] < 50.0


def test_metrics_at_threshold_confusion_and_curves():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.2])
    labels = np.array([0, 0, 1, 1, 1, 0])
    m = th.metrics_at_threshold(scores, labels, 0.39)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 2)
    assert m["confusion"] == [[2, 1], [1, 2]]
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["aucroc"] == pytest.approx(8 / 9)
    assert len(m["roc"]["fpr"]) == len(m["roc"]["tpr"]) and m["roc"]["tpr"][-1] == 1.0
    assert len(m["pr"]["precision"]) == len(m["pr"]["recall"])
    quick = th.metrics_at_threshold(scores, labels, 0.39, curves=False)
    assert quick["roc"] is None and quick["f1"] == m["f1"]
    single = th.metrics_at_threshold(scores, np.zeros(6), 0.5)
    assert single["aucroc"] is None and single["fp"] == 2


def test_financial_impact_arithmetic():
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.05])
    labels = np.array([1, 0, 1, 1, 0])
    f = th.financial_impact(scores, labels, 0.5, avg_loss=1000.0, cost_per_review=20.0)
    assert f["money_caught"] == 2000.0 and f["review_cost"] == 60.0 and f["missed_loss"] == 1000.0
    assert f["net_benefit"] == 1940.0 and f["total_cost"] == 1060.0
    m = th.metrics_at_threshold(scores, labels, 0.5)
    assert th.financial_impact(scores, labels, 0.5, avg_loss=1000.0, cost_per_review=20.0, metrics=m) == f


def test_default_threshold_with_known_good_reference_flags_one_percent_of_it():
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 2000)
    scored = np.r_[rng.normal(0, 1, 300), rng.normal(6, 1, 700)]  # 70% anomalous, as ECG5000's test file
    own = th.default_threshold(scored)
    assert own.flagged <= 0.05 * len(scored) + 1  # its own distribution cannot tell 70% are anomalies
    t = th.default_threshold(scored, reference_scores=reference)
    assert t.method == "target_fpr" and (reference >= t.value).mean() <= 0.01
    assert t.flagged >= 690  # nearly every anomaly is flagged
    few = th.default_threshold(scored, reference_scores=reference[:10])  # too few known-good scores
    assert few.method == own.method and few.value == own.value
