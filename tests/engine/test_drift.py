"""Drift: a model trained on one company's ledger (make_journal_entries.py --seed 7) applied to
another's (--seed 5) warns and names the columns that moved; the same company's data does not."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.drift import DriftReport
from engine.io import load
from engine.model_reuse import check_drift, model_threshold
from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema
from tests.conftest import JOURNAL_GENERATOR


def _ledger(root, seed: int, rows: int, name: str):
    out = root / f"{name}.csv"
    subprocess.run([sys.executable, str(JOURNAL_GENERATOR), "--seed", str(seed), "--rows", str(rows),
                    "--global-anomalies", "20", "--local-anomalies", "10", "--out", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory):
    if not JOURNAL_GENERATOR.is_file():
        pytest.skip(f"journal generator not found at {JOURNAL_GENERATOR}")
    root = tmp_path_factory.mktemp("drift")
    train = _ledger(root, 7, 3000, "seed7_train")
    loaded, schema = load(train)
    model = AnomalyModel("iforest", seed=0).fit(loaded.frame, schema)
    return root, model, _ledger(root, 7, 2000, "seed7_other"), _ledger(root, 5, 2000, "seed5")


def _report(model, path) -> DriftReport:
    frame = pd.read_csv(path)
    threshold, _ = model_threshold(model)
    return check_drift(model, frame, model.score(frame).scores, threshold, file=path.name)


def test_another_company_warns_and_names_the_columns(ledgers):
    _, model, _, other_company = ledgers
    report = _report(model, other_company)
    assert report.drifted and {"PRCTR", "HKONT"} <= set(report.moved_columns)
    text = "\n".join(report.lines())
    assert "seed5.csv does not look like the data the model learnt from" in text
    assert "HKONT" in text and "no level for" in text and "train a model on this file" in text


def test_the_same_company_does_not_warn(ledgers):
    _, model, same_company, _ = ledgers
    report = _report(model, same_company)
    assert not report.drifted and report.lines() == [] and report.moved_columns == []


def test_flagged_share_and_numeric_shift():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"amount": rng.lognormal(4, 0.3, 2000), "account": rng.choice(["A", "B"], 2000)})
    schema = Schema(columns=[ColumnInfo("amount", Role.NUMERIC, "t"), ColumnInfo("account", Role.CATEGORICAL, "t")])
    model = AnomalyModel("ecod").fit(train, schema)
    threshold, _ = model_threshold(model)
    moved = train.assign(amount=train["amount"] * 20)
    report = check_drift(model, moved, model.score(moved).scores, threshold)
    assert report.flagged_far_above and report.flagged_share > 0.5 and report.expected_share < 0.05
    assert [c.kind for c in report.columns] == ["shifted", "out of range"]
    assert report.moved_columns == ["amount"] and "higher" in report.columns[0].detail
    assert any("of its records are flagged where the threshold's rule expects about" in line
               for line in report.lines())
    fresh = pd.DataFrame({"amount": rng.lognormal(4, 0.3, 500), "account": rng.choice(["A", "B"], 500)})
    assert not check_drift(model, fresh, model.score(fresh).scores, threshold).drifted
    assert not check_drift(model, moved.iloc[:10], model.score(moved.iloc[:10]).scores, threshold).drifted  # too few



def test_applying_a_model_carries_the_drift_report(ledgers):
    from engine.model_reuse import apply_model

    _, model, same_company, other_company = ledgers
    assert apply_model(model, other_company).drift.drifted
    assert not apply_model(model, same_company).drift.drifted
