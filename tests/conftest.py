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
