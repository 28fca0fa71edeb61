"""``compare`` in a subprocess: the table, the JSON object, the contamination study, located errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT


def run_cli(*args):
    return subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(0)
    n, k = 500, 120
    x = rng.normal(size=(n, 3))
    y = np.zeros(n, dtype=int)
    y[:k] = 1
    x[:k] = 0.3 * x[:k] + 3.0
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=y).sample(frac=1, random_state=1)
    d = tmp_path_factory.mktemp("compare")
    frame.to_csv(d / "test.csv", index=False)
    ref = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    ref.to_csv(d / "ref.csv", index=False)
    ref.drop(columns="c").to_csv(d / "ref_missing.csv", index=False)
    return d


def test_json_has_every_detectors_metrics_times_and_disagreements(files):
    r = run_cli("compare", files / "test.csv", "--label-column", "label", "--train-csv", files / "ref.csv",
                "--detectors", "pca,ecod", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows"] == 500 and out["train_rows"] == 200 and out["n_anomalies"] == 120
    names = [d["detector"] for d in out["detectors"]]
    assert names == ["pca", "ecod"]
    for d in out["detectors"]:
        for key in ("aucroc", "aucpr", "precision", "recall", "f1", "fit_seconds", "score_seconds",
                    "parameters", "model_bytes", "threshold", "flagged"):
            assert d[key] is not None, key
        assert d["aucroc"] > 0.9
        assert "roc" not in d  # the curves come with --details
    (pair,) = out["disagreements"]
    assert (pair["a"], pair["b"]) == ("pca", "ecod") and "rows_only_a" not in pair
    assert "contamination" not in out


def test_details_add_rows_and_curves(files):
    r = run_cli("compare", files / "test.csv", "--label-column", "label", "--detectors", "pca,ecod",
                "--json", "--details")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    pair = out["disagreements"][0]
    assert len(pair["rows_only_a"]) == pair["only_a"] and len(pair["rows_only_b"]) == pair["only_b"]
    assert out["detectors"][0]["roc"]["fpr"][0] == 0.0


def test_contamination_study_and_the_table(files):
    r = run_cli("compare", files / "test.csv", "--label-column", "label", "--train-csv", files / "ref.csv",
                "--detectors", "pca", "--contamination", "0,10,25", "--json")
    assert r.returncode == 0, r.stderr
    (study,) = json.loads(r.stdout)["contamination"]
    shares = [p["share"] for p in study["points"]]
    assert shares == [0.0, 0.1, 0.25]
    first, _, last = study["points"]
    assert first["aucroc"] > 0.95 and last["aucroc"] < first["aucroc"]
    r = run_cli("compare", files / "test.csv", "--label-column", "label", "--detectors", "pca,ecod",
                "--contamination", "0,5,50")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "AUCROC" in text and "pca" in text and "ecod" in text and "disagreements" in text
    assert "contamination study, pca" in text
    assert "not enough anomalies" in text  # 60 in the pool, 50% of ~190 normal rows needs more


@pytest.mark.parametrize("args,needle", [
    (["--detectors", "pca,nope"], "nope"),
    (["--contamination", "0,abc"], "abc"),
    (["--contamination", "0,120"], "120"),
    (["--train-csv", "REF_MISSING"], "ref_missing.csv"),
    (["--label-column", "nolabel"], "nolabel"),
])
def test_errors_are_one_located_line(files, args, needle):
    args = [str(files / "ref_missing.csv") if a == "REF_MISSING" else a for a in args]
    base = ["compare", files / "test.csv"]
    if "--label-column" not in args:
        base += ["--label-column", "label"]
    r = run_cli(*base, *args, "--detectors", "pca") if "--detectors" not in args else run_cli(*base, *args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and needle in lines[0]
