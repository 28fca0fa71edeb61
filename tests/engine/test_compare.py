"""engine.compare: several detectors on the same rows, disagreements, contamination study, playback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.compare import (
    DEFAULT_SHARES,
    arrival_order,
    compare_detectors,
    contamination_study,
    replay,
    replay_scores,
    state_size,
)
from engine.errors import AnomalyDeskError, Cancelled
from engine.io import infer_schema
from engine.schema import Role, SchemaOverrides
from engine.thresholds import default_threshold

CHEAP = ("pca", "ecod", "iforest")


def labelled(n=600, n_anom=60, seed=0, cluster=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.zeros(n, dtype=bool)
    y[rng.choice(n, n_anom, replace=False)] = True
    if cluster:  # anomalies alike: once enough are trained on, they look normal
        x[y] = 0.3 * x[y] + np.array([3.0, -3.0, 3.0, -3.0])
    else:
        x[y] += rng.choice([-1, 1], size=(n_anom, 4)) * 4.0
    frame = pd.DataFrame(x, columns=list("abcd"))
    frame["label"] = y.astype(int)
    schema = SchemaOverrides(label_column="label").apply(infer_schema(frame))
    return frame, schema, y


@pytest.fixture(scope="module")
def data():
    return labelled()


@pytest.fixture(scope="module")
def comparison(data):
    frame, schema, y = data
    return compare_detectors(frame, schema, CHEAP, labels=y, params={"iforest": {"n_estimators": 50}})


def test_every_detector_gets_metrics_times_sizes_and_curves(data, comparison):
    frame, _schema, y = data
    assert [r.name for r in comparison.runs] == list(CHEAP)
    assert comparison.rows == len(frame) and comparison.n_anomalies == int(y.sum())
    for run in comparison.runs:
        m = run.metrics
        assert m["aucroc"] > 0.9 and 0 < m["aucpr"] <= 1
        assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == len(frame)
        assert m["tp"] + m["fp"] == int(run.flagged.sum())
        assert m["f1"] <= m["best_f1"] <= 1
        # the product's default threshold on this detector's scores
        assert run.threshold == pytest.approx(default_threshold(run.scores).value)
        assert run.fit_seconds > 0 and run.score_seconds > 0
        assert run.parameters > 0 and run.model_bytes >= 8 * run.parameters // 2
        assert (run.parameters, run.model_bytes) == state_size(run.model.detector_)
        assert run.roc["fpr"][0] == 0 and run.roc["tpr"][-1] == 1 and len(run.roc["fpr"]) <= 202
        assert np.all(np.diff(run.pr["recall"]) >= 0)
        s = run.summary()
        assert s["detector"] == run.name and "roc" in s and s["flagged"] == int(run.flagged.sum())


def test_disagreements_are_records_flagged_by_one_and_not_the_other(comparison):
    assert len(comparison.disagreements) == 3  # every pair once
    a, b = comparison.run("pca"), comparison.run("iforest")
    d = comparison.disagreement("pca", "iforest")
    assert np.array_equal(d.only_a, np.flatnonzero(a.flagged & ~b.flagged))
    assert np.array_equal(d.only_b, np.flatnonzero(b.flagged & ~a.flagged))
    assert d.both + d.neither + len(d.only_a) + len(d.only_b) == comparison.rows
    flipped = comparison.disagreement("iforest", "pca")
    assert np.array_equal(flipped.only_a, d.only_b)
    s = comparison.summary()
    assert s["disagreements"][0]["rows_only_a"] == [int(i) for i in comparison.disagreements[0].only_a]
    assert "rows_only_a" not in comparison.summary(with_rows=False)["disagreements"][0]


def test_without_labels_times_and_disagreements_but_no_metrics(data):
    frame, schema, _y = data
    c = compare_detectors(frame, schema, ["pca", "ecod"])
    assert all(r.metrics is None and r.roc is None for r in c.runs)
    assert c.n_labelled == 0 and len(c.disagreements) == 1
    assert c.runs[0].summary()["aucroc"] is None


def test_verdicts_on_some_rows_are_labels_enough(data):
    frame, schema, y = data
    rows = np.r_[np.flatnonzero(y)[:10], np.flatnonzero(~y)[:40]]
    c = compare_detectors(frame, schema, ["pca"], labels=y[rows], labelled=rows)
    m = c.runs[0].metrics
    assert c.n_labelled == 50 and m["tp"] + m["fp"] + m["fn"] + m["tn"] == 50


def test_progress_cancel_and_failures(data):
    frame, schema, y = data
    seen = []
    compare_detectors(frame, schema, ["pca", "ecod"], labels=y, progress=lambda f, m="", **k: seen.append(f))
    assert seen and seen[-1] == pytest.approx(1.0) and all(0 <= f <= 1 for f in seen)
    with pytest.raises(Cancelled):
        compare_detectors(frame, schema, ["pca"], should_stop=lambda: True)
    c = compare_detectors(frame, schema, ["pca", "ecod"], params={"ecod": {"nonsense": 1}}, keep_going=True)
    assert [r.name for r in c.runs] == ["pca"] and "nonsense" in c.failures["ecod"]
    with pytest.raises(AnomalyDeskError, match="nonsense"):
        compare_detectors(frame, schema, ["ecod"], params={"ecod": {"nonsense": 1}})
    with pytest.raises(AnomalyDeskError, match="at least one"):
        compare_detectors(frame, schema, [])


def test_a_reference_file_trains_and_the_file_is_scored(data):
    frame, schema, y = data
    ref = frame[~y].drop(columns="label").head(300)
    c = compare_detectors(frame, schema, ["pca"], train_frame=ref, labels=y)
    assert c.train_rows == 300 and c.runs[0].metrics["aucroc"] > 0.9
    run = c.runs[0]
    # the threshold flags 1% of the known-good rows, whatever share of the scored file is anomalous
    assert run.threshold == pytest.approx(default_threshold(run.scores, reference_scores=run_train_scores(ref, schema)).value)


def test_contamination_study_aucroc_falls_as_anomalies_are_mixed_in():
    frame, schema, y = labelled(n=800, n_anom=300, seed=1, cluster=True)
    steps = []
    study = contamination_study(frame, schema, y, "pca", progress=lambda f, m="", **k: steps.append(f))
    assert [p.share for p in study.points] == list(DEFAULT_SHARES)
    assert study.anomaly_pool == 150 and study.train_rows == 250
    run = [p for p in study.points if p.skipped is None]
    assert all(p.aucroc is not None for p in run)
    assert run[0].aucroc > 0.95 and run[0].anomalies == 0
    assert run[-1].aucroc < 0.5 < 0.95 < run[0].aucroc  # anomalies learnt as normal hurt
    for p in study.points:
        assert p.anomalies == round(p.share * study.train_rows) and p.anomalies + p.normals == 250
    assert steps[-1] == pytest.approx(1.0)


def test_contamination_study_says_when_there_are_not_enough_anomalies(data):
    frame, schema, y = data  # 60 anomalies: pool of 30
    study = contamination_study(frame, schema, y, "pca", shares=[0, 0.05, 0.5])
    assert study.points[0].aucroc is not None
    skipped = study.points[2]
    assert skipped.aucroc is None and "not enough anomalies" in skipped.skipped
    assert any("not enough anomalies" in n for n in study.notes)
    with pytest.raises(AnomalyDeskError, match="between 0% and 100%"):
        contamination_study(frame, schema, y, "pca", shares=[1.5])
    with pytest.raises(Cancelled):
        contamination_study(frame, schema, y, "pca", should_stop=lambda: True)


def test_contamination_study_with_a_reference_file(data):
    frame, schema, y = data
    ref = frame[~y].drop(columns="label").head(200).reset_index(drop=True)
    study = contamination_study(frame, schema, y, "pca", shares=[0, 0.1], train_frame=ref)
    assert study.train_rows == 200 and study.points[1].anomalies == 20
    assert study.eval_rows == int((~y).sum()) + 30


def test_playback_counts_agree_with_the_final_confusion_matrix(data, comparison):
    frame, _schema, y = data
    scores = {r.name: r.scores for r in comparison.runs}
    cuts = {r.name: r.threshold for r in comparison.runs}
    steps = list(replay_scores(scores, y, cuts, step=70))
    assert [s.seen for s in steps] == [*range(70, len(frame), 70), len(frame)]
    for run in comparison.runs:
        last = steps[-1].counters[run.name]
        m = run.metrics
        assert (last.tp, last.fp, last.fn, last.tn) == (m["tp"], m["fp"], m["fn"], m["tn"])
        assert last.precision == pytest.approx(m["precision"]) and last.recall == pytest.approx(m["recall"])
        assert last.accuracy == pytest.approx((m["tp"] + m["tn"]) / len(frame))
        seen = [s.counters[run.name].seen for s in steps]
        assert seen == [s.seen for s in steps]  # running, never going back
    # streaming through the fitted models, chunk by chunk, gives the same counters
    streamed = list(replay(frame, {r.name: r.model for r in comparison.runs}, y, cuts, step=250))
    assert streamed[-1].counters == steps[-1].counters
    with pytest.raises(AnomalyDeskError, match="at least 1"):
        list(replay_scores(scores, y, cuts, step=0))


def test_arrival_order_follows_a_datetime_column():
    when = pd.date_range("2024-01-01 08:00", periods=40, freq="h")[::-1]
    frame = pd.DataFrame({"when": when, "x": np.linspace(0, 1, 40) ** 2})
    schema = infer_schema(frame)
    assert "when" in schema.by_role(Role.DATETIME)
    assert list(arrival_order(frame, schema)) == list(range(39, -1, -1))
    assert list(arrival_order(frame, None)) == list(range(40))


def run_train_scores(ref, schema):
    from engine.pipeline import AnomalyModel

    return AnomalyModel("pca").fit(ref, schema, known_good=True).train_scores_
