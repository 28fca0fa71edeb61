"""``evaluate`` in a subprocess: the JSON contract of DESIGN.md, labels of every kind, train files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

KEYS = ("aucroc", "aucpr", "p_at_n", "found_at_budget", "fit_seconds", "score_seconds", "detector", "rows",
        "by_value")


def run_cli(*args):
    return subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def table(n=400, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    if labels is not None:
        frame["label"] = labels
        anomalous = np.asarray([str(v) not in ("0", "False", "false", "regular") for v in labels])
        frame.loc[anomalous, "a"] += 8
        frame.loc[np.asarray(labels) == "global", "a"] += 8  # globals far beyond the locals
    return frame


@pytest.mark.parametrize("labels,normal", [
    (np.r_[[True] * 8, [False] * 392], None),
    (np.r_[["global"] * 5, ["local"] * 3, ["regular"] * 392], None),
])
def test_evaluate_json_contract(tmp_path, labels, normal):
    path = tmp_path / "data.csv"
    table(labels=labels).to_csv(path, index=False)
    extra = ["--normal-value", normal] if normal else []
    result = run_cli("evaluate", path, "--label-column", "label", "--detector", "pca", "--json", *extra)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key in KEYS:
        assert key in out
    assert out["rows"] == 400 and out["aucroc"] > 0.95 and out["found_at_budget"] == 8
    if labels.dtype.kind == "U":
        assert out["by_value"]["global"]["count"] == 5 and out["by_value"]["local"]["count"] == 3
        assert out["by_value"]["global"]["in_top_1pct"] == 4  # the top 1% of 400 rows is 4 rows


def test_evaluate_with_a_reference_train_file(tmp_path):
    train = tmp_path / "train.csv"
    table(n=300, seed=1).to_csv(train, index=False)
    path = tmp_path / "test.csv"
    table(labels=np.r_[np.ones(8, int), np.zeros(392, int)]).to_csv(path, index=False)
    result = run_cli("evaluate", path, "--label-column", "label", "--train-csv", train, "--detector", "auto",
                     "--epochs", "2", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["train_rows"] == 300 and out["detector"] == "auto" and out["aucroc"] > 0.95
    assert set(out["members"]) == {"knn", "lof"}  # auto's rule for a clean reference file


def test_evaluate_text_output_and_errors(tmp_path):
    path = tmp_path / "data.csv"
    table(labels=np.r_[np.ones(8, int), np.zeros(392, int)]).to_csv(path, index=False)
    result = run_cli("evaluate", path, "--label-column", "label", "--detector", "pca")
    assert result.returncode == 0 and "aucroc" in result.stdout
    bad = run_cli("evaluate", path, "--label-column", "nope", "--detector", "pca")
    assert bad.returncode != 0 and "nope" in bad.stderr and "Traceback" not in bad.stderr
    single = tmp_path / "single.csv"
    table(labels=np.zeros(400, int)).to_csv(single, index=False)
    one = run_cli("evaluate", single, "--label-column", "label", "--detector", "pca", "--json")
    assert one.returncode != 0 and "label" in one.stderr and len(one.stderr.strip().splitlines()) == 1
    wrong_train = tmp_path / "other.csv"
    pd.DataFrame({"z": [1, 2, 3]}).to_csv(wrong_train, index=False)
    mism = run_cli("evaluate", path, "--label-column", "label", "--train-csv", wrong_train, "--json")
    assert mism.returncode != 0 and "a, b, c" in mism.stderr
