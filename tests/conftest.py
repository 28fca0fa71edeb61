"""Shared test set-up. Qt runs offscreen: CI has no display."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("ANOMALY_DESK_SHARED", REPO_ROOT.parent / "shared"))
BENCHMARK_DATA = SHARED_DIR / "data" / "benchmarks"
SAMPLE_CSV = REPO_ROOT / "resources" / "sample_journal_entries.csv"
JOURNAL_GENERATOR = SHARED_DIR / "tools" / "make_journal_entries.py"


@pytest.fixture(scope="session")
def benchmark_data() -> Path:
    if not BENCHMARK_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {BENCHMARK_DATA}")
    return BENCHMARK_DATA


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    return SAMPLE_CSV


def hidden_cluster(seed: int = 0):
    """1500 normal rows, 60 normal rows extreme along ``a`` (what a detector flags first) and 30
    anomalies in a tight cluster it ranks only moderately: feedback has to find them."""
    import numpy as np
    import pandas as pd

    from engine.io import infer_schema

    rng = np.random.default_rng(seed)
    normal = rng.normal(0, 1, (1500, 4))
    extreme_normals = rng.normal(0, 1, (60, 4)) * np.array([6.0, 1, 1, 1])
    anomalies = rng.normal([2.8, 2.8, 0, 0], 0.15, (30, 4))
    frame = pd.DataFrame(np.vstack([normal, extreme_normals, anomalies]), columns=["a", "b", "c", "d"])
    y = np.r_[np.zeros(1560, bool), np.ones(30, bool)]
    return frame, infer_schema(frame), y
