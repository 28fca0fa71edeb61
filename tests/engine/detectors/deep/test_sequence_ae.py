from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.detectors.deep.sequence import SequenceAutoencoderDetector
from engine.errors import SchemaMismatchError
from engine.features import FeatureMatrix
from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema

FAST = dict(hidden_size=16, latent_dim=4, epochs=25, batch_size=32, device="cpu", early_stopping=0, bidirectional=False)
T = 24
SPIKE_ROW, SPIKE_STEP = 7, 10


def beats(n: int = 160, seed: int = 0) -> np.ndarray:
    """Rows are sine cycles with a little phase jitter; one row has a spike at one time step."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :]
    phase = rng.normal(0, 0.15, (n, 1))
    x = np.sin(2 * np.pi * t / T + phase) + rng.normal(0, 0.03, (n, T))
    x[SPIKE_ROW, SPIKE_STEP] += 2.5
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def fm():
    return FeatureMatrix(values=beats(), feature_names=[f"t{i:02d}" for i in range(T)])


@pytest.fixture(scope="module")
def fitted(fm):
    return SequenceAutoencoderDetector(**FAST).fit(fm)


def test_spike_ranks_first_and_its_step_gets_the_largest_share(fm, fitted):
    scores = fitted.decision_function(fm)
    assert scores.shape == (fm.n_rows,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert int(np.argmax(scores)) == SPIKE_ROW
    contrib = fitted.feature_contributions(fm)
    assert contrib.shape == (fm.n_rows, T) and (contrib >= 0).all() and np.allclose(contrib.sum(axis=1), 1.0)
    assert int(np.argmax(contrib[SPIKE_ROW])) == SPIKE_STEP
    expected = fitted.expected_values(fm)
    assert expected.shape == (fm.n_rows, T)
    # the reconstruction follows the beat, not the spike
    assert abs(expected[SPIKE_ROW, SPIKE_STEP] - np.sin(2 * np.pi * SPIKE_STEP / T)) < 1.0
    assert np.sqrt(np.mean((expected[1:5] - fm.values[1:5]) ** 2)) < 0.3
    assert fitted.step_terms(fm).shape == (fm.n_rows, T)


@pytest.mark.parametrize("options", [dict(cell="lstm", bidirectional=True), dict(num_layers=2, dropout=0.1, step_layers="shared"),
                                     dict(score="scaled", validation_fraction=0.0)])
def test_options(fm, options):
    det = SequenceAutoencoderDetector(**{**FAST, "epochs": 2, **options}).fit(fm)
    assert np.isfinite(det.decision_function(fm)).all()


def test_progress_reports_epoch_loss_and_speed(fm):
    seen = []
    SequenceAutoencoderDetector(**{**FAST, "epochs": 2, "early_stopping": 5}).fit(
        fm, progress=lambda f, msg, **m: seen.append((f, m)))
    assert seen and seen[-1][0] == 1.0
    assert any(m.get("epoch") and m.get("train_loss") is not None and m.get("rows_per_s") for _, m in seen)


def test_bad_input(fm, fitted):
    with pytest.raises(ValueError, match="window"):
        SequenceAutoencoderDetector(window=1).fit(fm)
    with pytest.raises(ValueError, match="step_layers"):
        SequenceAutoencoderDetector(step_layers="x").fit(fm)
    with pytest.raises(ValueError, match="cell"):
        SequenceAutoencoderDetector(cell="rnn").fit(fm)
    one = FeatureMatrix(values=np.zeros((10, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="at least 2"):
        SequenceAutoencoderDetector(**FAST).fit(one)
    with pytest.raises(ValueError):
        SequenceAutoencoderDetector(**FAST).fit(fm, sample_weight=np.zeros(fm.n_rows))
    with pytest.raises(SchemaMismatchError):
        fitted.decision_function(FeatureMatrix(values=np.zeros((3, T - 1), dtype=np.float32)))


def series(n: int = 500, seed: int = 1) -> pd.DataFrame:
    """A time-ordered file: two sensors in quadrature; rows 300-305 freeze (each value ordinary)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    a = np.sin(2 * np.pi * i / 20) + rng.normal(0, 0.03, n)
    b = np.cos(2 * np.pi * i / 20) + rng.normal(0, 0.03, n)
    a[300:306], b[300:306] = a[300], b[300]
    return pd.DataFrame({"a": a, "b": b})


def test_windowed_mode_finds_the_frozen_stretch(tmp_path):
    df = series()
    schema = Schema(columns=[ColumnInfo("a", Role.NUMERIC, "t"), ColumnInfo("b", Role.NUMERIC, "t")])
    params = {k: v for k, v in FAST.items() if k != "device"} | {"window": 10, "epochs": 30}
    model = AnomalyModel("sequence_ae", params=params, device="cpu").fit(df, schema)
    result = model.score(df)
    top = np.argsort(-result.scores)[:4]
    assert ((top >= 298) & (top <= 308)).all(), top
    assert result.contributions.shape == (len(df), 2) and np.allclose(result.contributions.sum(axis=1), 1.0)
    assert result.expected is not None and list(result.expected.columns) == ["a", "b"]
    model.save(tmp_path / "model")
    again = AnomalyModel.load(tmp_path / "model")
    np.testing.assert_array_equal(again.score(df).scores, result.scores)
    # fewer rows than a window still scores (edge rows repeated), and a row of weight 0 drops its windows
    short = again.score(df.iloc[:4])
    assert short.scores.shape == (4,) and np.isfinite(short.scores).all()
    w = np.ones(len(df))
    w[300:306] = 0.0
    det = model.detector_
    det2 = SequenceAutoencoderDetector(**{**det.get_params(), "epochs": 1}).fit(model.transform(df), sample_weight=w)
    assert np.isfinite(det2.decision_function(model.transform(df))).all()
    with pytest.raises(ValueError, match="training rows"):
        SequenceAutoencoderDetector(window=50, device="cpu").fit(model.transform(df.iloc[:20]))


def test_row_mode_with_categorical_context():
    rng = np.random.default_rng(3)
    n = 200
    kind = rng.integers(0, 2, n)
    t = np.arange(12)[None, :]
    x = np.where(kind[:, None] == 0, np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12)) + rng.normal(0, 0.03, (n, 12))
    df = pd.DataFrame(x, columns=[f"h{i:02d}" for i in range(12)])
    df["kind"] = np.where(kind == 0, "sin", "cos")
    df.loc[5, "kind"] = "cos" if kind[5] == 0 else "sin"  # the shape of the other kind
    schema = Schema(columns=[ColumnInfo(c, Role.NUMERIC, "t") for c in df.columns[:12]] +
                    [ColumnInfo("kind", Role.CATEGORICAL, "t")])
    params = {k: v for k, v in FAST.items() if k != "device"} | {"epochs": 30}
    model = AnomalyModel("sequence_ae", params=params, device="cpu").fit(df, schema)
    result = model.score(df)
    assert int(np.argmax(result.scores)) == 5
    assert result.contributions.shape == (n, 13)
