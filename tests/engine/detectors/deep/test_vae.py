from __future__ import annotations

import json

import numpy as np
import pytest

from engine.detectors.deep.vae import VAEDetector
from engine.errors import Cancelled, NotFittedError
from engine.features import Preprocessor
from tests.engine.detectors.deep.test_autoencoder import mixed_table

FAST = dict(hidden_layers=[16], latent_dim=3, epochs=20, batch_size=64, device="cpu", n_samples=4)


@pytest.fixture(scope="module")
def encoded():
    df, schema, anomalous = mixed_table()
    pre = Preprocessor().fit(df, schema)
    return pre.transform(df), anomalous


@pytest.fixture(scope="module")
def fitted(encoded):
    fm, _ = encoded
    return VAEDetector(**FAST).fit(fm)


def test_unfitted():
    det = VAEDetector(beta=0.5)
    assert det.get_params()["beta"] == 0.5
    with pytest.raises(NotFittedError):
        det.score_samples(None)


def test_scores_contributions_expected(encoded, fitted):
    fm, anomalous = encoded
    scores = fitted.score_samples(fm)
    assert scores.shape == (fm.n_rows,) and np.isfinite(scores).all()
    assert anomalous[np.argsort(-scores)[:60]].sum() >= 4  # top 10%
    contrib = fitted.feature_contributions(fm)
    assert contrib.shape == (fm.n_rows, len(fm.source_columns)) and (contrib >= 0).all()
    np.testing.assert_allclose(contrib.sum(axis=1), 1.0, rtol=1e-6)
    expected = fitted.expected_values(fm)
    assert expected.shape == (fm.n_rows, fm.n_features)


def test_probability_scores_are_reproducible_and_differ_from_error(encoded, fitted):
    fm, _ = encoded
    np.testing.assert_array_equal(fitted.score_samples(fm), fitted.score_samples(fm))
    meta, arrays = fitted.get_state()
    # the bundle's resolved score decides how it scores (the params only say what was asked for)
    err = VAEDetector.from_state({**meta, "score": "error", "params": {**meta["params"], "score": "error"}}, arrays)
    assert not np.allclose(err.score_samples(fm), fitted.score_samples(fm))
    assert np.corrcoef(err.score_samples(fm), fitted.score_samples(fm))[0, 1] > 0.5


def test_state_round_trip(encoded, fitted):
    fm, _ = encoded
    meta, arrays = fitted.get_state()
    loaded = VAEDetector.from_state(json.loads(json.dumps(meta)), arrays)
    np.testing.assert_array_equal(loaded.score_samples(fm), fitted.score_samples(fm))


def test_cancel_and_progress(encoded):
    fm, _ = encoded
    seen = []
    VAEDetector(**{**FAST, "epochs": 2}).fit(fm, progress=lambda f, m, **k: seen.append(k))
    assert any(k.get("train_loss") is not None for k in seen)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 3

    with pytest.raises(Cancelled):
        VAEDetector(**FAST).fit(fm, should_stop=stop)
    assert calls["n"] == 3


def test_zero_weights_excluded(encoded):
    fm, _ = encoded
    w = np.ones(fm.n_rows)
    w[:100] = 0
    det = VAEDetector(**{**FAST, "epochs": 2, "validation_fraction": 0.0}).fit(fm, sample_weight=w)
    assert det.history_.epochs_run == 2
