"""``simulate-review`` end to end in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def _csv(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, (600, 3))
    odd = rng.normal(0, 1, (30, 3)) * np.array([6.0, 1, 1])
    anomalies = rng.normal([2.8, 2.8, 0], 0.15, (20, 3))
    frame = pd.DataFrame(np.vstack([normal, odd, anomalies]), columns=["a", "b", "c"]).round(4)
    frame["status"] = ["ok"] * 630 + ["fraud"] * 20
    path = tmp_path / "small.csv"
    frame.to_csv(path, index=False)
    return path


def test_simulate_review_json(tmp_path):
    path = _csv(tmp_path)
    proc = _run("simulate-review", str(path), "--label-column", "status", "--normal-value", "ok",
                "--budget", "40", "--batch", "10", "--detector", "iforest", "--seed", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rows"] == 650 and out["anomalies"] == 20 and out["detector"]
    assert len(out["found_static"]) == len(out["found_feedback"]) == 4
    assert out["found_feedback"][-1] >= out["found_static"][-1]
    assert len(out["retrain_seconds"]) == 3 and out["seed"] == 1 and out["prepare_seconds"] > 0


def test_simulate_review_table_and_errors(tmp_path):
    path = _csv(tmp_path)
    proc = _run("simulate-review", str(path), "--label-column", "status", "--budget", "20",
                "--detector", "iforest", "--param", "n_estimators=30")
    assert proc.returncode == 0, proc.stderr
    assert "found_static" in proc.stdout and "retrain seconds: mean" in proc.stdout and "first call" in proc.stdout
    missing = _run("simulate-review", str(path), "--label-column", "nope")
    assert missing.returncode != 0
    assert "nope" in missing.stderr and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    all_normal = _run("simulate-review", str(path), "--label-column", "status", "--normal-value", "zzz")
    assert all_normal.returncode != 0 and "Traceback" not in all_normal.stderr
    bad = _run("simulate-review", str(path), "--label-column", "status", "--detector", "iforest",
               "--param", "n_estimators=0")
    assert bad.returncode != 0 and "n_estimators" in bad.stderr and "Traceback" not in bad.stderr
