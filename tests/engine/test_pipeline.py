"""AnomalyModel: fit/score on mixed tables, severity, save/load identical, schema checks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.errors import NotFittedError, SchemaMismatchError
from engine.io import infer_schema
from engine.pipeline import AnomalyModel, ScoreResult

FAST_AUTO = {"members": ["iforest", "ecod", "pca"]}


def ledger(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kind = rng.choice(["rent", "salary", "travel"], size=n)
    amount = np.where(kind == "salary", 3000.0, np.where(kind == "rent", 900.0, 150.0)) * rng.lognormal(0, 0.1, n)
    frame = pd.DataFrame({"doc": np.arange(n) + 1000, "kind": kind, "amount": amount.round(2),
                          "qty": rng.integers(1, 5, n).astype(float)})
    frame.loc[:1, "amount"] = 250000.0  # planted: huge amounts
    return frame


@pytest.mark.parametrize("detector,params", [("iforest", None), ("ecod", None), ("pca", None),
                                              ("ocsvm", None), ("auto", FAST_AUTO)])
def test_fit_score_save_load_identical(tmp_path, detector, params):
    frame = ledger()
    schema = infer_schema(frame)
    assert "doc" not in schema.feature_columns  # identifier, not a feature
    model = AnomalyModel(detector, params=params, seed=3).fit(frame, schema)
    result = model.score(frame)
    assert isinstance(result, ScoreResult)
    n = len(frame)
    assert result.scores.shape == (n,) and result.severity.shape == (n,)
    assert np.all((result.severity >= 0) & (result.severity <= 100))
    assert result.columns == schema.feature_columns
    assert result.contributions.shape == (n, len(result.columns))
    assert np.allclose(result.contributions.sum(axis=1), 1.0)
    # the planted amounts rank first (ECOD, rank-based per column and counting both tails of every
    # column, may put a row that is extreme on qty and kind at once between them)
    assert {0, 1} <= set(np.argsort(-result.scores)[:4 if detector == "ecod" else 3])
    amount_col = result.columns.index("amount")
    assert (np.argmax(result.contributions[:2], axis=1) == amount_col).all()
    assert result.severity[:2].min() > 98
    assert result.member_scores
    model.save(tmp_path / "m")
    again = AnomalyModel.load(tmp_path / "m")
    other = again.score(frame)
    np.testing.assert_array_equal(other.scores, result.scores)
    np.testing.assert_array_equal(other.severity, result.severity)
    np.testing.assert_allclose(other.contributions, result.contributions, rtol=1e-12, atol=1e-12)
    assert again.detector == detector and again.rows_ == n and again.fit_seconds_ > 0
    assert again.model_card()["versions"]["numpy"] == np.__version__


def test_auto_reports_member_scores_and_expected_values(tmp_path):
    frame = ledger()
    model = AnomalyModel("auto", params=FAST_AUTO).fit(frame, infer_schema(frame))
    result = model.score(frame.iloc[:20])
    assert set(result.member_scores) == {"iforest", "ecod", "pca"}
    assert result.expected is not None and list(result.expected.columns) == result.columns
    assert len(result.expected) == 20


def test_score_refuses_data_that_does_not_fit_naming_columns():
    frame = ledger()
    model = AnomalyModel("ecod").fit(frame, infer_schema(frame))
    with pytest.raises(SchemaMismatchError, match="amount"):
        model.score(frame.drop(columns=["amount"]))
    bad = frame.copy()
    bad["qty"] = "many"
    with pytest.raises(SchemaMismatchError, match="qty"):
        model.score(bad)
    # extra columns and a different column order are fine
    shuffled = frame[["qty", "amount", "kind", "doc"]].assign(extra=1)
    np.testing.assert_array_equal(model.score(shuffled).scores, model.score(frame).scores)


def test_unfitted_model_and_progress_and_weights():
    frame = ledger()
    with pytest.raises(NotFittedError):
        AnomalyModel("ecod").score(frame)
    seen = []
    w = np.ones(len(frame))
    w[:2] = 0.0  # confirmed anomalies are not learnt as normal
    model = AnomalyModel("ecod").fit(frame, infer_schema(frame), progress=lambda f, m="", **k: seen.append(f),
                                     sample_weight=w)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert model.train_scores_.size == len(frame) - 2


def test_importing_the_pipeline_does_not_import_torch():
    code = ("import sys, engine.pipeline, engine.detectors, engine.bundle, engine.evaluation; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_auto_takes_its_reference_file_rule_on_known_good_rows():
    frame = ledger(300)
    schema = infer_schema(frame)
    members = {"members": ["iforest", "ecod"]}
    contaminated = AnomalyModel("auto", params=members).fit(frame, schema)
    reference = AnomalyModel("auto", params=members).fit(frame, schema, known_good=True)
    chosen = AnomalyModel("auto", params={**members, "combination": "median"}).fit(frame, schema, known_good=True)
    assert not contaminated.detector_.reference and "reference" not in contaminated.params
    assert reference.detector_.reference and reference.params["reference"] is True
    assert chosen.detector_.combination_ == "median"  # the analyst's explicit choice wins
    numeric = pd.DataFrame({"a": np.random.default_rng(0).normal(size=200), "b": np.arange(200.0)})
    clean = AnomalyModel("auto").fit(numeric, infer_schema(numeric), known_good=True).detector_
    assert clean.member_names_ == ["knn", "lof"] and (clean.standardize_, clean.combination_) == ("rank", "mean")
    assert clean.members_[0].n_neighbors == 5 and clean.members_[0].scaling == "minmax"
    other = AnomalyModel("iforest").fit(frame, schema, known_good=True)  # only auto has a combination
    assert "reference" not in other.params


def test_the_autoencoder_trims_only_when_fitted_on_the_all_numeric_file_it_scores():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    numeric = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    schema = infer_schema(numeric)
    fast = {"hidden_layers": [8], "latent_dim": 2, "epochs": 2}
    self_trained = AnomalyModel("autoencoder", params=fast).fit(numeric, schema)
    reference = AnomalyModel("autoencoder", params=fast).fit(numeric, schema, known_good=True)
    chosen = AnomalyModel("autoencoder", params={**fast, "trim": 0.05}).fit(numeric, schema)
    mixed = ledger(300)
    categorical = AnomalyModel("autoencoder", params=fast).fit(mixed, infer_schema(mixed))
    assert self_trained.detector_.trim == 0.2 and self_trained.params["trim"] == 0.2
    assert not reference.detector_.trim and "trim" not in reference.params
    assert chosen.detector_.trim == 0.05  # the analyst's explicit choice wins
    assert not categorical.detector_.trim  # the masked model is not trimmed by default


def test_auto_trims_its_autoencoder_member_by_the_same_rule():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    numeric = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    schema = infer_schema(numeric)
    fast = {"members": ["ecod", "autoencoder"], "epochs": 2}
    self_trained = AnomalyModel("auto", params=fast).fit(numeric, schema)
    reference = AnomalyModel("auto", params=fast).fit(numeric, schema, known_good=True)
    chosen = AnomalyModel("auto", params={**fast, "member_params": {"autoencoder": {"trim": 0.05, "latent_dim": 1}}}
                          ).fit(numeric, schema)
    mixed = ledger(300)
    categorical = AnomalyModel("auto", params=fast).fit(mixed, infer_schema(mixed))
    member = {m.name: m for m in self_trained.detector_.members_}["autoencoder"]
    assert member.trim == 0.2 and self_trained.params["member_params"] == {"autoencoder": {"trim": 0.2}}
    assert not {m.name: m for m in reference.detector_.members_}["autoencoder"].trim
    assert "member_params" not in reference.params
    chosen_member = {m.name: m for m in chosen.detector_.members_}["autoencoder"]
    assert chosen_member.trim == 0.05 and chosen_member.latent_ == 1  # the analyst's choice wins
    assert not {m.name: m for m in categorical.detector_.members_}["autoencoder"].trim
