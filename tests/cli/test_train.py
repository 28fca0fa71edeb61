"""``train`` in a subprocess: writes a loadable bundle, never learns from the label, clean errors."""

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


@pytest.fixture()
def small_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"id": np.arange(n), "amount": rng.lognormal(5, 0.3, n).round(2),
                          "kind": rng.choice(["a", "b", "c"], n), "qty": rng.integers(1, 9, n),
                          "verdict": np.where(np.arange(n) < 6, "fraud", "ok")})
    path = tmp_path / "small.csv"
    frame.to_csv(path, index=False)
    return path


def test_train_writes_a_bundle_without_the_label(tmp_path, small_csv):
    out = tmp_path / "model"
    result = run_cli("train", small_csv, "--out", out, "--detector", "iforest", "--label-column", "verdict",
                     "--seed", "2")
    assert result.returncode == 0, result.stderr
    assert "%" in result.stderr  # progress goes to stderr
    assert "saved" in result.stdout
    doc = json.loads((out / "model.json").read_text())
    assert doc["detector"] == "iforest" and doc["seed"] == 2
    assert "verdict" not in doc["preprocessing"]["columns"]
    assert doc["schema"]["label_column"] == "verdict"
    from engine.pipeline import AnomalyModel

    model = AnomalyModel.load(out)
    assert model.score(pd.read_csv(small_csv)).scores.shape == (300,)


def test_train_auto_with_few_epochs(tmp_path, small_csv):
    out = tmp_path / "auto"
    result = run_cli("train", small_csv, "--out", out, "--epochs", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "model.json").read_text())
    assert doc["detector"] == "auto"
    members = [m["name"] for m in doc["detector_state"]["members"]]
    assert "ecod" in members and len(members) >= 2


@pytest.mark.parametrize("args,needle", [
    (["--label-column", "missing"], "missing"),
    (["--epochs", "0", "--detector", "autoencoder"], "epochs"),
    (["--detector", "pca", "--param", "variance=2"], "variance = 2 is not allowed; it takes a number 0 < x <= 1"),
    (["--detector", "pca", "--param", "latent_dim=2"], "no parameter 'latent_dim'"),
])
def test_train_errors_are_one_line(tmp_path, small_csv, args, needle):
    result = run_cli("train", small_csv, "--out", tmp_path / "m", *args)
    assert result.returncode != 0
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()  # nothing half-written


def test_train_with_detector_settings(tmp_path, small_csv):
    out = tmp_path / "model"
    result = run_cli("train", small_csv, "--out", out, "--detector", "iforest", "--param", "n_estimators=20",
                     "--param", "max_samples=64")
    assert result.returncode == 0, result.stderr
    params = json.loads((out / "model.json").read_text())["detector_state"]["params"]
    assert params["n_estimators"] == 20 and params["max_samples"] == 64


def test_train_on_a_missing_file(tmp_path):
    result = run_cli("train", tmp_path / "absent.csv", "--out", tmp_path / "m")
    assert result.returncode != 0 and "absent.csv" in result.stderr and "Traceback" not in result.stderr


def test_train_on_a_uniform_sample_streamed_from_the_file(tmp_path, small_csv):
    out = tmp_path / "model"
    done = subprocess.run([sys.executable, "main.py", "train", str(small_csv), "--out", str(out), "--detector",
                           "ecod", "--sample", "150"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "on 150 rows" in done.stderr
    assert json.loads((out / "model.json").read_text())["training"]["rows"] == 150
