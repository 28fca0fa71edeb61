"""Scoring on a Dask cluster (two local worker processes on loopback) gives the single-process scores
file, from CSV and from Parquet; a malformed row fails with the single-process message, nothing written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError
from engine.pipeline import AnomalyModel
from engine.scoring.files import score_file
from tests.conftest import JOURNAL_GENERATOR

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

ROWS = 200_000


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    if not JOURNAL_GENERATOR.is_file():
        pytest.skip(f"journal generator not found at {JOURNAL_GENERATOR}")
    folder = tmp_path_factory.mktemp("ledger")
    path = folder / "je.csv"
    subprocess.run([sys.executable, str(JOURNAL_GENERATOR), "--rows", str(ROWS), "--seed", "3", "--out", str(path)],
                   check=True, capture_output=True)
    from engine.io import load

    head = folder / "head.csv"
    with open(path) as src, open(head, "w") as dst:
        for i, line in enumerate(src):
            if i > 5000:
                break
            dst.write(line)
    loaded, schema = load(head)
    model = AnomalyModel("ecod").fit(loaded.frame, schema)
    model.save(folder / "model")
    return folder, path, model


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def test_csv_on_two_worker_processes_equals_single_process(ledger, client):
    from engine.scoring.cluster import score_on_cluster

    folder, path, model = ledger
    single = score_file(model, path, folder / "single.csv")
    summary = score_on_cluster(client, folder / "model", path, folder / "cluster.csv", blocksize=1 << 20)
    assert summary.rows == single.rows == ROWS and summary.flagged == single.flagged
    assert summary.chunks > 2 and len(summary.workers) == 2  # two distinct worker processes scored
    assert (folder / "cluster.csv").read_bytes() == (folder / "single.csv").read_bytes()


def test_parquet_in_and_out_on_the_cluster_equals_single_process(ledger, client):
    from engine.scoring.cluster import score_on_cluster

    folder, path, model = ledger
    pd.read_csv(path).to_parquet(folder / "je.parquet", row_group_size=40_000)
    score_file(model, folder / "je.parquet", folder / "single.parquet")
    summary = score_on_cluster(client, folder / "model", folder / "je.parquet", folder / "cluster.parquet",
                               blocksize=1 << 20)
    assert len(summary.workers) == 2
    one, many = pd.read_parquet(folder / "single.parquet"), pd.read_parquet(folder / "cluster.parquet")
    pd.testing.assert_frame_equal(one, many)
    if not (folder / "single.csv").exists():
        score_file(model, path, folder / "single.csv")
    from_csv = pd.read_csv(folder / "single.csv")
    assert one["key"].astype(str).tolist() == from_csv["key"].astype(str).tolist()
    np.testing.assert_allclose(one["score"].to_numpy(), from_csv["score"].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(one["severity"].to_numpy(), from_csv["severity"].to_numpy())


def test_malformed_row_in_one_partition_gives_the_located_message_and_no_output(ledger, client):
    from engine.scoring.cluster import score_on_cluster

    folder, path, model = ledger
    bad_dir = folder / "bad"
    bad_dir.mkdir()
    bad = bad_dir / "je.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[150_000] = lines[150_000].rstrip("\r\n") + ",surplus\n"  # file row 150001 has one field too many
    bad.write_text("".join(lines))
    with pytest.raises(DataError) as single:
        score_file(model, bad, bad_dir / "single.csv")
    with pytest.raises(DataError) as on_cluster:
        score_on_cluster(client, folder / "model", bad, bad_dir / "cluster.csv", blocksize=1 << 20)
    assert str(on_cluster.value) == str(single.value)
    assert single.value.row == 150_001 and "je.csv" in str(single.value)
    assert sorted(p.name for p in bad_dir.iterdir()) == ["je.csv"]  # no scores file, no parts left
