"""Nearest-neighbour detectors (kNN distance, LOF): quality, agreement with scikit-learn/PyOD's
definitions, leave-self-out, reference subsampling, state round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.detectors import make_detector
from engine.detectors.neighbors import KNNDetector, LOFDetector
from engine.errors import AnomalyDeskError, Cancelled, NotFittedError
from engine.evaluation import aucroc
from engine.features import FeatureMatrix

NEIGHBORS = ("knn", "lof")


def matrix(x: np.ndarray) -> FeatureMatrix:
    names = [f"f{i}" for i in range(x.shape[1])]
    return FeatureMatrix(x.astype(np.float32), names, names, np.arange(x.shape[1]))


def clusters(seed: int = 0):
    """Two dense clusters far apart, a looser one, and 10 rows scattered in the empty space between the
    dense two, where no single feature is extreme (what isolation forests miss and neighbours see)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 0.3, size=(300, 3))
    b = rng.normal(0.0, 0.3, size=(300, 3)) + [6.0, 6.0, 0.0]
    c = rng.normal(0.0, 0.6, size=(100, 3)) + [0.0, 12.0, 0.0]
    out = np.linspace(1.5, 4.5, 10)[:, None] * [1.0, 1.0, 0.0] + rng.normal(0.0, 0.1, size=(10, 3))
    x = np.vstack([out, a, b, c])
    y = np.zeros(len(x), dtype=bool)
    y[:10] = True
    return matrix(x), y


@pytest.mark.parametrize("name", NEIGHBORS)
def test_finds_rows_between_clusters_and_explains_them(name):
    fm, y = clusters()
    det = make_detector(name, seed=0).fit(fm)
    scores = det.score_samples(fm)
    assert scores.shape == (len(y),) and scores.dtype == np.float64
    assert aucroc(y, scores) > 0.95
    contrib = det.feature_contributions(fm)
    assert contrib.shape == (len(y), 3)
    assert np.all(contrib >= 0) and np.allclose(contrib.sum(axis=1), 1.0)
    # the outliers sit at the normal level of feature 2: features 0 and 1 explain them
    assert np.all(contrib[y, 2] < 0.5)


def test_knn_is_the_mean_distance_to_the_k_nearest_other_rows():
    from sklearn.neighbors import NearestNeighbors

    fm, _ = clusters()
    x = fm.values.astype(np.float64)
    d, _ = NearestNeighbors(n_neighbors=6).fit(x).kneighbors(x)
    ours = KNNDetector(n_neighbors=5).fit(fm).score_samples(fm)  # the default: the engine's encoding
    np.testing.assert_allclose(ours, d[:, 1:].mean(axis=1), rtol=1e-9)


def test_minmax_scaling_measures_distances_in_the_training_range_of_each_feature():
    from sklearn.neighbors import NearestNeighbors

    fm, _ = clusters()
    x = fm.values.astype(np.float64) * [1.0, 100.0, 0.01]  # units must not decide the distance
    wide = matrix(x)
    scaled = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))
    d, _ = NearestNeighbors(n_neighbors=6).fit(scaled).kneighbors(scaled)
    ours = KNNDetector(n_neighbors=5, scaling="minmax").fit(wide).score_samples(wide)
    np.testing.assert_allclose(ours, d[:, 1:].mean(axis=1), rtol=1e-5)
    with pytest.raises(AnomalyDeskError, match="scaling"):
        KNNDetector(scaling="zscore")


def test_lof_matches_scikit_learn_on_the_training_rows():
    from sklearn.neighbors import LocalOutlierFactor

    fm, _ = clusters()
    x = fm.values.astype(np.float64)
    ref = -LocalOutlierFactor(n_neighbors=20).fit(x).negative_outlier_factor_
    ours = LOFDetector(n_neighbors=20, scaling="encoded").fit(fm).score_samples(fm)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_new_rows_use_every_neighbour_and_copies_skip_one():
    fm, _ = clusters()
    det = KNNDetector(n_neighbors=1, scaling="encoded").fit(fm)
    x = fm.values.astype(np.float64)
    # a copy of a reference row leaves that copy out: its score is its distance to the nearest other row
    again = det.score_samples(matrix(x[:1]))
    assert again[0] > 0
    np.testing.assert_allclose(again, det.score_samples(fm)[:1])
    near = x[:1] + 1e-3
    assert det.score_samples(matrix(near))[0] == pytest.approx(np.sqrt(3) * 1e-3, rel=1e-3)


@pytest.mark.parametrize("name", NEIGHBORS)
def test_reference_rows_are_capped_and_drawn_by_seed(name):
    fm, y = clusters()
    det = make_detector(name, max_reference_rows=200, scaling="minmax", seed=3).fit(fm)
    assert det.reference_.shape == (200, 3)
    assert det.reference_.min() >= 0.0 and det.reference_.max() <= 1.0  # min-max scaled on the training rows
    same = make_detector(name, max_reference_rows=200, scaling="minmax", seed=3).fit(fm)
    np.testing.assert_array_equal(det.score_samples(fm), same.score_samples(fm))
    assert aucroc(y, det.score_samples(fm)) > 0.9


@pytest.mark.parametrize("name", NEIGHBORS)
def test_state_round_trip_scores_identically(name):
    fm, _ = clusters()
    det = make_detector(name, seed=1).fit(fm)
    meta, arrays = det.get_state()
    meta = json.loads(json.dumps(meta))
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    again = type(det).from_state(meta, {k: v.copy() for k, v in arrays.items()})
    np.testing.assert_array_equal(again.score_samples(fm), det.score_samples(fm))
    np.testing.assert_array_equal(again.feature_contributions(fm), det.feature_contributions(fm))
    arrays["reference"] = arrays["reference"][:, :2]
    with pytest.raises(AnomalyDeskError, match="reference"):
        type(det).from_state(meta, arrays)


@pytest.mark.parametrize("name", NEIGHBORS)
def test_unfitted_wrong_width_bad_params_and_cancel_are_refused(name):
    fm, _ = clusters()
    with pytest.raises(NotFittedError):
        make_detector(name).score_samples(fm)
    det = make_detector(name).fit(fm)
    with pytest.raises(AnomalyDeskError, match="encoded features"):
        det.score_samples(matrix(fm.values[:, :2]))
    with pytest.raises(AnomalyDeskError, match="n_neighbors"):
        make_detector(name, n_neighbors=0)
    with pytest.raises(Cancelled):
        make_detector(name).fit(fm, should_stop=lambda: True)


@pytest.mark.parametrize("name", NEIGHBORS)
def test_zero_weight_rows_are_left_out_of_the_reference(name):
    fm, y = clusters()
    w = np.where(y, 0.0, 1.0)
    det = make_detector(name).fit(fm, sample_weight=w)
    assert det.reference_.shape[0] == (~y).sum()
    kept = make_detector(name).fit(matrix(fm.values[~y]))
    np.testing.assert_allclose(det.score_samples(fm), kept.score_samples(fm), rtol=1e-9)
