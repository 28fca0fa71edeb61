"""``auto``: calibrated members, agreement weights, round trip, and robustness to a useless member."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.detectors import _REGISTRY as REGISTRY
from engine.detectors import DETECTOR_NAMES, make_detector
from engine.detectors.base import Detector
from engine.detectors.ensemble import AutoDetector
from engine.detectors.params import PARAMS, SEED
from engine.errors import AnomalyDeskError
from engine.evaluation import aucroc
from engine.features import FeatureMatrix

FAST = ["iforest", "ecod", "pca"]


def planted(n=800, d=6, n_out=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + 0.5 * rng.normal(size=(n, 1))
    y = np.zeros(n, dtype=bool)
    y[:n_out] = True
    x[:n_out, 1] += 7.0
    names = [f"f{i}" for i in range(d)]
    return FeatureMatrix(x.astype(np.float32), names, names, np.arange(d)), y


class NoiseDetector(Detector):
    """A member that is no better than chance: random scores, unrelated to the data."""

    name = "noise"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        self.n_features_in_ = fm.values.shape[1]
        return self

    def decision_function(self, fm):
        return np.random.default_rng(self.seed + 99).normal(size=fm.values.shape[0])

    def feature_contributions(self, fm):
        return np.full((fm.values.shape[0], len(fm.source_columns)), 1.0 / len(fm.source_columns))

    def get_state(self):
        return {"params": self.get_params(), "n": self.n_features_in_}, {}

    @classmethod
    def from_state(cls, meta, arrays):
        det = cls(**meta["params"])
        det.n_features_in_ = meta["n"]
        return det


@pytest.fixture()
def with_noise(monkeypatch):
    import sys
    import types

    module = types.ModuleType("tests_noise_detector")
    module.NoiseDetector = NoiseDetector
    monkeypatch.setitem(sys.modules, "tests_noise_detector", module)
    monkeypatch.setitem(REGISTRY, "noise", ("tests_noise_detector", "NoiseDetector"))
    monkeypatch.setitem(PARAMS, "noise", (SEED,))


def test_auto_is_the_default_and_combines_members():
    assert DETECTOR_NAMES[0] == "auto"
    fm, y = planted()
    det = make_detector("auto", members=FAST, standardize="z", seed=0).fit(fm)
    assert det.member_names_ == FAST
    assert det.weights_.shape == (3,) and det.weights_.sum() == pytest.approx(1.0)
    members = det.member_scores(fm)
    assert set(members) == set(FAST)
    scores = det.decision_function(fm)
    np.testing.assert_allclose(scores, det.combine(members))
    assert aucroc(y, scores) > 0.97
    # each member is standardised against its own training scores: median 0, IQR 1
    z = det.standardized(members)
    np.testing.assert_allclose(np.median(z, axis=0), 0.0, atol=1e-9)
    contrib = det.feature_contributions(fm)
    assert np.allclose(contrib.sum(axis=1), 1.0) and (np.argmax(contrib[y], axis=1) == 1).mean() >= 0.8


def test_a_member_at_chance_gets_little_weight_and_cannot_drag_the_ensemble_down(with_noise):
    fm, y = planted()
    det = AutoDetector(members=["iforest", "ecod", "noise"], combination="mean").fit(fm)
    w = dict(zip(det.member_names_, det.weights_, strict=True))
    assert w["noise"] < 0.1 < w["iforest"]
    equal = AutoDetector(members=["iforest", "ecod", "noise"], weighting="equal", combination="mean").fit(fm)
    without = AutoDetector(members=["iforest", "ecod"], combination="mean").fit(fm)
    ours = aucroc(y, det.decision_function(fm))
    assert ours >= aucroc(y, equal.decision_function(fm))
    assert ours >= aucroc(y, without.decision_function(fm)) - 0.01


def test_auto_state_round_trip_is_exact():
    fm, _ = planted()
    det = AutoDetector(members=["iforest", "ecod", "pca", "ocsvm"], seed=5).fit(fm)
    meta, arrays = det.get_state()
    meta = json.loads(json.dumps(meta))
    again = AutoDetector.from_state(meta, dict(arrays))
    np.testing.assert_array_equal(again.decision_function(fm), det.decision_function(fm))
    np.testing.assert_array_equal(again.feature_contributions(fm), det.feature_contributions(fm))
    bad = dict(arrays)
    bad["weights"] = np.ones(2)
    with pytest.raises(AnomalyDeskError, match="members"):
        AutoDetector.from_state(meta, bad)


def test_auto_refuses_itself_as_member_and_reports_progress():
    fm, _ = planted()
    with pytest.raises(AnomalyDeskError):
        AutoDetector(members=["auto"]).fit(fm)
    seen = []
    AutoDetector(members=FAST).fit(fm, progress=lambda f, m="", **k: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m.startswith("ecod") for _, m in seen)


def test_default_members_and_rule_follow_the_table_and_a_clean_reference_file():
    assert AutoDetector()._member_names() == ["iforest", "knn"]
    assert AutoDetector(reference=True)._member_names() == ["knn", "lof"]
    assert AutoDetector().combination is None  # resolved by table type when fitted
    fm, _ = planted()
    det = AutoDetector().fit(fm)
    assert (det.standardize_, det.combination_) == ("tail", "max")
    clean = AutoDetector(reference=True).fit(fm)
    assert (clean.standardize_, clean.combination_) == ("rank", "mean")
    assert (clean.members_[0].n_neighbors, clean.members_[0].scaling) == (5, "minmax")  # the rule's parameters
    mine = AutoDetector(reference=True, member_params={"knn": {"n_neighbors": 7}}).fit(fm)
    assert (mine.members_[0].n_neighbors, mine.members_[0].scaling) == (7, "minmax")  # the caller's win


def test_rank_standardisation_keeps_rows_beyond_the_training_range_ordered():
    fm, y = planted()
    det = AutoDetector(members=FAST, standardize="rank", combination="max", seed=0).fit(fm)
    r = det.standardized(det.member_scores(fm))
    assert r.min() >= 0.0 and r.max() <= 1.0 + 1e-12  # the training rows' own ranks
    np.testing.assert_allclose(np.median(r, axis=0), 0.5, atol=0.01)
    np.testing.assert_allclose(det.score_samples(fm), r.max(axis=1))
    assert aucroc(y, det.score_samples(fm)) > 0.97
    # rows beyond every training row do not tie at the top: the farther out, the higher
    far = FeatureMatrix(np.vstack([fm.values[:1] + 10.0, fm.values[:1] + 40.0]), fm.feature_names,
                        fm.source_columns, fm.source_index)
    top = det.score_samples(far)
    assert 1.0 < top[0] < top[1]
    meta, arrays = det.get_state()
    again = AutoDetector.from_state(json.loads(json.dumps(meta)), dict(arrays))
    np.testing.assert_array_equal(again.score_samples(fm), det.score_samples(fm))
    with pytest.raises(AnomalyDeskError, match="standardize"):
        AutoDetector(standardize="minmax")


def test_a_bundle_from_before_the_rule_was_resolved_loads_as_z_scores():
    fm, _ = planted()
    det = AutoDetector(members=FAST, combination="median", standardize="z").fit(fm)
    meta, arrays = det.get_state()
    meta = json.loads(json.dumps(meta))
    for key in ("combination_", "standardize_"):
        meta.pop(key)
    meta["params"].pop("standardize")
    arrays.pop("quantiles")
    old = AutoDetector.from_state(meta, arrays)
    assert (old.standardize_, old.combination_) == ("z", "median")
    np.testing.assert_array_equal(old.score_samples(fm), det.score_samples(fm))


def test_categorical_heavy_tables_get_the_members_that_model_categories():
    from engine.detectors.ensemble import RULES, categorical_share, torch_available

    rng = np.random.default_rng(0)
    n = 50
    fm = FeatureMatrix(numeric=rng.normal(size=(n, 1)).astype(np.float32), numeric_names=["amount"],
                       numeric_source=np.array([0]), codes=rng.integers(0, 3, size=(n, 2)),
                       categorical_source=np.array([1, 2]), categories=[["a", "b", "<other>"]] * 2,
                       source_columns=["amount", "kind", "account"])
    assert categorical_share(fm) == pytest.approx(2 / 3)
    numeric, _ = planted()
    assert categorical_share(numeric) == 0.0
    names = AutoDetector()._member_names(fm)
    assert names == (list(RULES[("categorical", False)][0]) if torch_available() else ["iforest", "knn"])
    assert "autoencoder" not in AutoDetector(members=FAST)._member_names(fm)  # an explicit list wins


def test_tail_standardisation_puts_every_members_top_tail_on_one_scale():
    fm, y = planted()
    det = AutoDetector(members=FAST, standardize="tail", combination="max", seed=0).fit(fm)
    t = det.standardized(det.member_scores(fm))
    # each member: 0 at its training median, 1 at its 99.9th percentile, whatever its IQR
    np.testing.assert_allclose(np.median(t, axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.quantile(t, 0.999, axis=0), 1.0, atol=1e-6)
    assert aucroc(y, det.decision_function(fm)) > 0.97
    meta, arrays = det.get_state()
    again = AutoDetector.from_state(json.loads(json.dumps(meta)), dict(arrays))
    np.testing.assert_array_equal(again.decision_function(fm), det.decision_function(fm))
    # a member flat up to its top 0.1% keeps its IQR scale rather than dividing by zero
    det.quantiles_[0, 999] = det.center_[0]
    assert np.isfinite(det.standardized(det.member_scores(fm))).all()


def test_max_combination_follows_the_most_alarmed_member():
    fm, y = planted()
    det = AutoDetector(members=FAST, combination="max").fit(fm)
    z = det.standardized(det.member_scores(fm))
    np.testing.assert_allclose(det.decision_function(fm), z.max(axis=1))
    with pytest.raises(AnomalyDeskError, match="combination"):
        AutoDetector(combination="trimmed")


class InvertedDetector(NoiseDetector):
    """A member that is badly wrong: it ranks the planted outliers as the most normal rows."""

    name = "inverted"

    def fit(self, fm, *, sample_weight=None, progress=None, should_stop=None):
        self.n_features_in_ = fm.values.shape[1]
        self.center_ = np.median(fm.values, axis=0)
        return self

    def decision_function(self, fm):
        return -np.abs(fm.values - self.center_).sum(axis=1)

    def get_state(self):
        return {"params": self.get_params(), "n": self.n_features_in_}, {"center": self.center_}

    @classmethod
    def from_state(cls, meta, arrays):
        det = super().from_state(meta, arrays)
        det.center_ = arrays["center"]
        return det


@pytest.mark.parametrize("bad", ["noise", "inverted"])
def test_median_combination_is_not_dragged_down_by_one_wrong_member(monkeypatch, with_noise, bad):
    import sys

    sys.modules["tests_noise_detector"].InvertedDetector = InvertedDetector
    monkeypatch.setitem(REGISTRY, "inverted", ("tests_noise_detector", "InvertedDetector"))
    monkeypatch.setitem(PARAMS, "inverted", (SEED,))
    fm, y = planted()
    members = ["iforest", "ecod", bad]
    det = AutoDetector(members=members, combination="median", standardize="z").fit(fm)
    z = det.standardized(det.member_scores(fm))
    np.testing.assert_allclose(det.decision_function(fm), np.median(z, axis=1))
    assert aucroc(y, z[:, 2]) < 0.6  # the member is no help (or worse)
    median = aucroc(y, det.decision_function(fm))
    mean = aucroc(y, AutoDetector(members=members, combination="mean", standardize="z", weighting="equal")
                  .fit(fm).decision_function(fm))
    good = min(aucroc(y, z[:, 0]), aucroc(y, z[:, 1]))
    assert median >= good - 0.01  # never worse than the weaker of the two members that see the outliers
    if bad == "inverted":  # a mean is pulled towards the wrong member; the median is not
        assert median > mean
    meta, arrays = det.get_state()
    again = AutoDetector.from_state(json.loads(json.dumps(meta)), dict(arrays))
    np.testing.assert_array_equal(again.decision_function(fm), det.decision_function(fm))


def test_default_auto_bundle_round_trip_scores_identically(tmp_path):
    """The default members (the isolation forest on unlogged amounts, kNN) survive save/load through
    the pipeline's bundle."""
    import pandas as pd

    from engine.io import infer_schema
    from engine.pipeline import AnomalyModel

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.lognormal(4.0, 1.2, size=300), "qty": rng.normal(10, 2, size=300),
                          "rate": rng.exponential(2.0, size=300)})
    frame.loc[:4, "amount"] *= 50.0
    model = AnomalyModel(detector="auto", params={"epochs": 2}).fit(frame, infer_schema(frame))
    det = model.detector_
    assert (det.standardize_, det.combination_) == ("tail", "max")
    assert det.member_names_ == ["iforest", "knn"] and det.members_[0].undo_log
    first = model.score(frame)
    model.save(tmp_path / "m")
    again = AnomalyModel.load(tmp_path / "m").score(frame)
    np.testing.assert_array_equal(again.scores, first.scores)
    np.testing.assert_array_equal(again.contributions, first.contributions)
    assert np.isin(np.arange(5), np.argsort(-first.scores)[:10]).sum() >= 4  # inflated amounts rank high


def test_score_and_explain_runs_each_member_once(monkeypatch):
    """Scores, contributions and expected values of the ensemble come from one pass of each member
    (scoring and explaining separately ran every member twice), and equal the separate answers."""
    fm, _ = planted()
    det = make_detector("auto", members=["iforest", "ecod", "pca"], seed=0).fit(fm)
    reference = (det.score_samples(fm), det.feature_contributions(fm), det.expected_values(fm))
    passes = []
    for member in det.members_:
        original = member.score_and_explain
        monkeypatch.setattr(member, "score_and_explain",
                            lambda f, expected=True, _o=original, _n=member.name: passes.append(_n) or _o(f, expected))
        for name in ("score_samples", "feature_contributions"):
            monkeypatch.setattr(member, name, lambda f, _n=name: pytest.fail(f"{_n} called beside score_and_explain"))
    out = det.score_and_explain(fm)
    assert sorted(passes) == ["ecod", "iforest", "pca"]
    np.testing.assert_allclose(out.scores, reference[0], rtol=1e-12)
    np.testing.assert_allclose(out.contributions, reference[1], rtol=1e-12)
    np.testing.assert_array_equal(out.expected, reference[2])
    assert set(out.members) == {"iforest", "ecod", "pca"}


def test_members_learn_from_at_most_max_fit_rows_and_every_row_is_calibrated():
    fm, y = planted()
    det = AutoDetector(members=["ecod", "knn"], max_fit_rows=200, seed=0).fit(fm)
    assert det.members_[0].total_weight_ == 200 and det.members_[1].reference_.shape[0] == 200
    assert det.train_scores_.shape == (len(y),)
    assert aucroc(y, det.decision_function(fm)) > 0.95
