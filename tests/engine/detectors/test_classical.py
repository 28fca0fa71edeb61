"""Classical detectors: quality on planted outliers, contributions, exact state round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.detectors import DETECTOR_NAMES, make_detector
from engine.detectors.classical import ECODDetector, IsolationForestDetector, OCSVMDetector, PCADetector
from engine.errors import AnomalyDeskError
from engine.features import FeatureMatrix

CLASSICAL = ("iforest", "ocsvm", "pca", "ecod")


def planted(n: int = 600, d: int = 5, n_out: int = 12, seed: int = 0):
    """Mildly correlated normal rows; outliers are far off on feature 2 only."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1))
    x = 0.5 * base + rng.normal(size=(n, d))
    y = np.zeros(n, dtype=bool)
    y[:n_out] = True
    x[:n_out, 2] += 6.0
    names = [f"f{i}" for i in range(d)]
    return FeatureMatrix(x.astype(np.float32), names, names, np.arange(d)), y


def auc(y, s):
    from engine.evaluation import aucroc

    return aucroc(y, s)


def test_registry_lists_all_detectors():
    assert set(CLASSICAL) | {"auto", "autoencoder", "vae"} <= set(DETECTOR_NAMES)
    with pytest.raises(AnomalyDeskError, match="unknown detector"):
        make_detector("nope")


@pytest.mark.parametrize("name", CLASSICAL)
def test_detector_finds_planted_outliers_and_explains_them(name):
    fm, y = planted()
    det = make_detector(name, seed=0).fit(fm)
    scores = det.decision_function(fm)  # shapes, shares and the rest of the contract: test_contract.py
    # ECOD scores each feature's tails on its own: on these symmetric Gaussian features both tails of
    # every noise feature add up, and the 12 outliers share one tail (PyOD's ECOD: 0.84 here too)
    assert auc(y, scores) > (0.8 if name == "ecod" else 0.95)
    contrib = det.feature_contributions(fm)
    # the feature the outliers were pushed along explains most of them
    assert np.mean(np.argmax(contrib[y], axis=1) == 2) >= 0.75


@pytest.mark.parametrize("name", CLASSICAL)
def test_wrong_width_is_refused(name):
    fm, _ = planted()
    det = make_detector(name).fit(fm)
    narrow = FeatureMatrix(fm.values[:, :3], ["a", "b", "c"], ["a", "b", "c"], np.arange(3))
    with pytest.raises(AnomalyDeskError, match="encoded features"):
        det.decision_function(narrow)


def test_isolation_forest_matches_scikit_learn():
    from sklearn.ensemble import IsolationForest

    fm, _ = planted()
    ours = IsolationForestDetector(seed=4).fit(fm).decision_function(fm)
    ref = -IsolationForest(random_state=4).fit(fm.values).score_samples(fm.values)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_ocsvm_matches_scikit_learn_decision_function():
    from sklearn.svm import OneClassSVM

    fm, _ = planted(n=300)
    ours = OCSVMDetector().fit(fm).decision_function(fm)
    ref = -OneClassSVM(gamma="scale", nu=0.5).fit(fm.values.astype(np.float64)).decision_function(
        fm.values.astype(np.float64))
    np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-7)


def test_ecod_is_additive_over_features_and_handles_unseen_ranges():
    fm, _ = planted()
    det = ECODDetector().fit(fm)
    far = FeatureMatrix(np.full((1, 5), 1e6, dtype=np.float32), fm.feature_names, fm.source_columns,
                        np.arange(5))
    s = det.decision_function(far)
    assert np.isfinite(s).all() and s[0] > det.decision_function(fm).max()
    # score = sum of per-feature outlyingness: shares times score give the per-feature terms back
    terms = det._column_outlyingness(fm)
    np.testing.assert_allclose(det.feature_contributions(fm) * det.decision_function(fm)[:, None], terms,
                               rtol=1e-9, atol=1e-12)


def test_ecod_scores_categorical_columns_from_codes_as_over_the_one_hot_matrix():
    """A categorical column's outlyingness is looked up by code; it equals the sum over its one-hot
    features searched one by one (the same matrix given as plain numeric features)."""
    from engine.features import Preprocessor
    from engine.schema import ColumnInfo, Role, Schema

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"amount": rng.lognormal(3, 1, 400), "shop": rng.choice(list("abcdefg"), 400,
                                                                                p=[.4, .3, .1, .1, .05, .04, .01])})
    schema = Schema(columns=[ColumnInfo("amount", Role.NUMERIC, "t"), ColumnInfo("shop", Role.CATEGORICAL, "t")])
    fm = Preprocessor().fit_transform(frame, schema)
    det = ECODDetector().fit(fm)
    dense = FeatureMatrix(fm.values, fm.feature_names, fm.source_columns, fm.source_index)
    np.testing.assert_allclose(det.score_samples(fm), det.score_samples(dense), rtol=1e-12)
    np.testing.assert_allclose(det.feature_contributions(fm), det.feature_contributions(dense), rtol=1e-12)
    explained = det.score_and_explain(fm)
    np.testing.assert_array_equal(explained.scores, det.score_samples(fm))
    np.testing.assert_array_equal(explained.contributions, det.feature_contributions(fm))


def test_pca_expected_values_reconstruct_normal_rows():
    fm, y = planted()
    det = PCADetector().fit(fm)
    exp = det.expected_values(fm)
    err = np.abs(exp - fm.values).mean(axis=1)
    assert err[~y].mean() < err[y].mean()


def test_zero_weight_rows_are_not_learnt_as_normal():
    fm, y = planted()
    w = np.where(y, 0.0, 1.0)
    det = ECODDetector().fit(fm, sample_weight=w)
    assert det.total_weight_ == pytest.approx((~y).sum())
    with pytest.raises(AnomalyDeskError, match="sample_weight"):
        ECODDetector().fit(fm, sample_weight=np.zeros(len(y)))
    # weight 0 = the row is left out of what is learnt: same model as fitting without those rows
    kept = FeatureMatrix(fm.values[~y], fm.feature_names, fm.source_columns, np.arange(5))
    for cls in (IsolationForestDetector, ECODDetector, PCADetector, OCSVMDetector):
        weighted = cls().fit(fm, sample_weight=w).decision_function(fm)
        np.testing.assert_allclose(weighted, cls().fit(kept).decision_function(fm), rtol=1e-6, atol=1e-9)


def test_categorical_one_hot_block_counts_as_one_column():
    rng = np.random.default_rng(0)
    n = 400
    num = rng.normal(size=(n, 1))
    cat = np.zeros((n, 3))
    cat[np.arange(n), rng.integers(0, 2, n)] = 1.0
    cat[:4] = [0, 0, 1]  # a rare level
    x = np.hstack([num, cat]).astype(np.float32)
    fm = FeatureMatrix(x, ["amount", "kind=a", "kind=b", "kind=c"], ["amount", "kind"], np.array([0, 1, 1, 1]))
    det = ECODDetector().fit(fm)
    contrib = det.feature_contributions(fm)
    assert contrib.shape == (n, 2)
    assert (np.argmax(contrib[:4], axis=1) == 1).all()


def test_ecod_tails_both_counts_the_short_tail_and_old_models_keep_the_skew_rule():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=(500, 2))  # right-skewed features
    x[0, 0] = 0.0  # the lowest value of a right-skewed feature: far out in the short (left) tail
    fm = FeatureMatrix(x.astype(np.float32), ["a", "b"], ["a", "b"], np.arange(2))
    both = ECODDetector().fit(fm)
    skew = ECODDetector(tails="skew").fit(fm)
    out_both, out_skew = both._column_outlyingness(fm)[0, 0], skew._column_outlyingness(fm)[0, 0]
    assert out_both == pytest.approx(2.0 * out_skew)  # the skew rule halves it (the mean of both tails)
    meta, arrays = both.get_state()
    assert meta["params"]["tails"] == "both"
    meta["params"].pop("tails")  # a model saved before the parameter existed
    old = ECODDetector.from_state(meta, arrays)
    np.testing.assert_array_equal(old.decision_function(fm), skew.decision_function(fm))
    with pytest.raises(AnomalyDeskError, match="tails"):
        ECODDetector(tails="left")


def test_iforest_undoes_the_log_transform_of_heavy_tailed_columns():
    import pandas as pd

    from engine.features import Preprocessor
    from engine.io import infer_schema

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.lognormal(3.0, 1.5, size=800), "level": rng.normal(size=800)})
    fm = Preprocessor().fit_transform(frame, infer_schema(frame))
    assert fm.numeric_log is not None and fm.numeric_log[0, 0] == 1.0  # amount was log1p-transformed
    lin = fm.linear_numeric()
    np.testing.assert_allclose(lin[:, 0], frame["amount"].to_numpy(), rtol=1e-4)  # expm1(log1p(x)) = x
    np.testing.assert_array_equal(lin[:, 1], fm.numeric[:, 1].astype(np.float64))  # untouched
    sub = fm.subset(np.arange(10))
    np.testing.assert_allclose(sub.linear_numeric(), lin[:10])
    det = IsolationForestDetector(seed=0).fit(fm)
    logged = IsolationForestDetector(undo_log=False, seed=0).fit(fm)
    assert not np.array_equal(det.decision_function(fm), logged.decision_function(fm))
    meta, arrays = logged.get_state()
    meta["params"].pop("undo_log")  # a model saved before the parameter existed saw the logged values
    np.testing.assert_array_equal(IsolationForestDetector.from_state(meta, arrays).decision_function(fm),
                                  logged.decision_function(fm))
