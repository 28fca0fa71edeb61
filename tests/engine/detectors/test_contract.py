"""The contract every detector keeps (as scikit-learn's ``parametrize_with_checks``): shapes, higher =
more anomalous, seed reproducibility, parameters by the constructor, JSON state and bundle round trip,
cancel, contributions. Tiny data and few epochs, so the whole table runs in seconds; what is specific
to one detector stays in its own test file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.detectors import DETECTOR_NAMES, TORCH_DETECTORS, available_detectors, make_detector
from engine.errors import Cancelled, NotFittedError
from engine.features import Preprocessor
from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema

#: the smallest settings that still learn the planted outliers
FAST: dict[str, dict] = {
    "auto": dict(members=["iforest", "ecod", "pca"]),
    "autoencoder": dict(hidden_layers=[8], latent_dim=2, epochs=3, batch_size=64, dropout=0.1, device="cpu"),
    "vae": dict(hidden_layers=[8], latent_dim=2, epochs=3, batch_size=64, n_samples=2, device="cpu"),
    "bigan": dict(hidden_layers=[8], latent_dim=2, discriminator_width=8, epochs=3, batch_size=64, device="cpu"),
    "sequence_ae": dict(hidden_size=8, latent_dim=2, epochs=3, batch_size=64, device="cpu"),
    "iforest": dict(n_estimators=30),
    "ocsvm": {},
    "pca": {},
    "ecod": {},
    "knn": dict(n_neighbors=5),
    "lof": dict(n_neighbors=10),
}
N_ROWS, N_OUT = 240, 6
ALL = [pytest.param(n, marks=pytest.mark.skipif(n not in available_detectors(), reason="needs torch"))
       for n in DETECTOR_NAMES]
ITERATIVE = [p for p in ALL if p.values[0] in TORCH_DETECTORS]  # check should_stop every batch
RANDOM = [p for p in ALL if p.values[0] in TORCH_DETECTORS | {"iforest"}]  # the seed changes the model


def table() -> tuple[pd.DataFrame, Schema, np.ndarray]:
    """Numeric columns and one categorical; the first rows are far out on two columns."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=N_ROWS) for i in range(4)})
    frame["kind"] = rng.choice(["a", "b", "c"], N_ROWS)
    outlier = np.zeros(N_ROWS, dtype=bool)
    outlier[:N_OUT] = True
    frame.loc[outlier, "x1"] += 8.0
    frame.loc[outlier, "x3"] -= 8.0
    schema = Schema(columns=[*(ColumnInfo(f"x{i}", Role.NUMERIC, "t") for i in range(4)),
                             ColumnInfo("kind", Role.CATEGORICAL, "t")])
    return frame, schema, outlier


@pytest.fixture(scope="module")
def data():
    frame, schema, outlier = table()
    return frame, schema, Preprocessor().fit(frame, schema).transform(frame), outlier


@pytest.fixture(scope="module")
def fitted(data):
    _, _, fm, _ = data
    cache: dict[str, object] = {}

    def get(name):
        if name not in cache:
            cache[name] = make_detector(name, **FAST[name]).fit(fm)
        return cache[name]

    return get


@pytest.mark.parametrize("name", ALL)
def test_scores_are_one_float_per_row_and_higher_means_more_anomalous(name, data, fitted):
    _, _, fm, outlier = data
    det = fitted(name)
    scores = det.decision_function(fm)
    assert scores.shape == (N_ROWS,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    np.testing.assert_array_equal(det.score_samples(fm), scores)  # the old name is an alias
    assert scores[outlier].min() > np.median(scores[~outlier])
    assert scores[outlier].mean() > np.quantile(scores[~outlier], 0.9)


@pytest.mark.parametrize("name", ALL)
def test_contributions_are_shares_of_the_original_columns(name, data, fitted):
    _, _, fm, outlier = data
    contrib = fitted(name).feature_contributions(fm)
    assert contrib.shape == (N_ROWS, len(fm.source_columns)) == (N_ROWS, 5)
    assert np.all(contrib >= 0) and np.allclose(contrib.sum(axis=1), 1.0)
    expected = fitted(name).expected_values(fm)
    assert expected is None or np.asarray(expected).shape == fm.values.shape


@pytest.mark.parametrize("name", ALL)
def test_unfitted_use_is_refused_and_params_follow_the_constructor(name, data):
    _, _, fm, _ = data
    det = make_detector(name, **FAST[name])
    with pytest.raises(NotFittedError):
        det.decision_function(fm)
    params = det.get_params()
    assert {k: params[k] for k in FAST[name]} == FAST[name]
    assert type(det)(**params).get_params() == params  # a clone, as scikit-learn's clone() makes


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_scores(name, data, fitted):
    _, _, fm, _ = data
    again = make_detector(name, **FAST[name]).fit(fm)
    np.testing.assert_allclose(again.decision_function(fm), fitted(name).decision_function(fm), rtol=1e-6)


@pytest.mark.parametrize("name", RANDOM)
def test_another_seed_another_model(name, data, fitted):
    _, _, fm, _ = data
    other = make_detector(name, **FAST[name], seed=1).fit(fm)
    assert not np.array_equal(other.decision_function(fm), fitted(name).decision_function(fm))


@pytest.mark.parametrize("name", ALL)
def test_state_is_json_and_arrays_and_the_bundle_scores_the_same(name, data, tmp_path):
    frame, schema, _, _ = data
    params = {k: v for k, v in FAST[name].items() if k != "device"}
    model = AnomalyModel(name, params=params, device="cpu").fit(frame, schema)
    meta, arrays = model.detector_.get_state()
    assert json.loads(json.dumps(meta)) == meta and all(isinstance(v, np.ndarray) for v in arrays.values())
    loaded = AnomalyModel.load(model.save(tmp_path / name))
    before, after = model.score(frame), loaded.score(frame)
    np.testing.assert_array_equal(after.scores, before.scores)
    np.testing.assert_array_equal(after.contributions, before.contributions)
    np.testing.assert_array_equal(after.severity, before.severity)
    assert (after.expected is None) == (before.expected is None)
    if before.expected is not None:
        pd.testing.assert_frame_equal(after.expected, before.expected)
    assert loaded.detector_.get_params() == model.detector_.get_params()


@pytest.mark.parametrize("name", ALL)
def test_should_stop_cancels(name, data):
    _, _, fm, _ = data
    with pytest.raises(Cancelled):
        make_detector(name, **FAST[name]).fit(fm, should_stop=lambda: True)


@pytest.mark.parametrize("name", ITERATIVE)
def test_training_stops_within_one_batch(name, data):
    _, _, fm, _ = data
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] >= 5

    with pytest.raises(Cancelled):
        make_detector(name, **{**FAST[name], "epochs": 100}).fit(fm, should_stop=should_stop)
    assert calls["n"] == 5
