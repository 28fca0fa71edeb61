from __future__ import annotations

import numpy as np
import pytest

from engine.detectors.deep.vae import VAEDetector
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


def test_scores_contributions_expected(encoded, fitted):
    fm, anomalous = encoded
    scores = fitted.decision_function(fm)
    assert scores.shape == (fm.n_rows,) and np.isfinite(scores).all()
    assert anomalous[np.argsort(-scores)[:60]].sum() >= 4  # top 10%
    contrib = fitted.feature_contributions(fm)
    assert contrib.shape == (fm.n_rows, len(fm.source_columns)) and (contrib >= 0).all()
    np.testing.assert_allclose(contrib.sum(axis=1), 1.0, rtol=1e-6)
    expected = fitted.expected_values(fm)
    assert expected.shape == (fm.n_rows, fm.n_features)


def test_probability_scores_are_reproducible_and_differ_from_error(encoded, fitted):
    fm, _ = encoded
    np.testing.assert_array_equal(fitted.decision_function(fm), fitted.decision_function(fm))
    meta, arrays = fitted.get_state()
    # the bundle's resolved score decides how it scores (the params only say what was asked for)
    err = VAEDetector.from_state({**meta, "score": "error", "params": {**meta["params"], "score": "error"}}, arrays)
    assert not np.allclose(err.decision_function(fm), fitted.decision_function(fm))
    assert np.corrcoef(err.decision_function(fm), fitted.decision_function(fm))[0, 1] > 0.5


def test_progress_reports_the_loss(encoded):
    fm, _ = encoded
    seen = []
    VAEDetector(**{**FAST, "epochs": 2}).fit(fm, progress=lambda f, m, **k: seen.append(k))
    assert any(k.get("train_loss") is not None for k in seen)


def test_zero_weights_excluded(encoded):
    fm, _ = encoded
    w = np.ones(fm.n_rows)
    w[:100] = 0
    det = VAEDetector(**{**FAST, "epochs": 2, "validation_fraction": 0.0}).fit(fm, sample_weight=w)
    assert det.history_.epochs_run == 2
