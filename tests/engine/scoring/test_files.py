"""Chunked scoring: same output as one-shot, bounded by the chunk, nothing half-written on error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import Cancelled, DataError, SchemaMismatchError
from engine.feedback import record_keys
from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema
from engine.scoring.files import count_data_rows, score_file


def _frame(n: int = 250, seed: int = 0, with_id: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "amount": rng.lognormal(4, 0.5, n).round(2),
        "qty": rng.integers(1, 9, n).astype(float),
        "shop": rng.choice(["north", "south", "=evil()"], n),
    })
    frame.loc[5, "qty"] = np.nan  # an integer column with a gap in one chunk only
    if with_id:
        frame.insert(0, "txn", [f"T{i:05d}" for i in range(n)])
    return frame


def _schema(with_id: bool = True) -> Schema:
    cols = [ColumnInfo("amount", Role.NUMERIC, "t"), ColumnInfo("qty", Role.NUMERIC, "t"),
            ColumnInfo("shop", Role.CATEGORICAL, "t")]
    if with_id:
        cols.insert(0, ColumnInfo("txn", Role.IDENTIFIER, "t"))
    return Schema(columns=cols)


@pytest.fixture(scope="module")
def model():
    return AnomalyModel("ecod").fit(_frame(), _schema())


def test_chunked_output_equals_one_shot(model, tmp_path):
    src = tmp_path / "in.csv"
    frame = _frame(seed=1)
    frame.to_csv(src, index=False)
    seen = []
    small = score_file(model, src, tmp_path / "small.csv", chunk_rows=7,
                      progress=lambda f, m="", **k: seen.append(f))
    whole = score_file(model, src, tmp_path / "whole.csv", chunk_rows=10_000)
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert small.chunks == 36 and whole.chunks == 1 and small.rows == whole.rows == 250
    assert seen == sorted(seen) and seen[-1] == 1.0
    out = pd.read_csv(tmp_path / "small.csv")
    assert list(out.columns[:4]) == ["key", "score", "severity", "flagged"]
    assert {"feature_1", "share_1", "feature_3", "share_3"} <= set(out.columns)
    assert list(out.columns[-4:]) == ["txn", "amount", "qty", "shop"]
    reference = model.score(frame)
    np.testing.assert_allclose(out["score"].to_numpy(), reference.scores, rtol=1e-12)
    assert out["key"].tolist() == frame["txn"].tolist()
    assert out["flagged"].sum() == small.flagged == int((reference.scores >= small.threshold).sum())
    assert set(out["shop"]) == {"north", "south", "'=evil()"}  # neutralised like every export
    text = (tmp_path / "small.csv").read_text()
    assert ",7," in text and ",7.0," not in text  # whole numbers stay whole whatever the chunk


def test_hash_keys_continue_across_chunks(tmp_path):
    model = AnomalyModel("ecod").fit(_frame(with_id=False), _schema(with_id=False))
    src = tmp_path / "in.csv"
    frame = _frame(seed=2, with_id=False)
    frame.to_csv(src, index=False)
    score_file(model, src, tmp_path / "out.csv", chunk_rows=40)
    keys = pd.read_csv(tmp_path / "out.csv")["key"].tolist()
    assert keys == [str(k) for k in record_keys(pd.read_csv(src), _schema(with_id=False))]


def test_unfit_file_is_refused_before_writing(model, tmp_path):
    src = tmp_path / "in.csv"
    _frame().drop(columns=["qty"]).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    with pytest.raises(SchemaMismatchError, match="qty"):
        score_file(model, src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_cancel_and_errors_leave_no_output(model, tmp_path):
    src = tmp_path / "in.csv"
    _frame().to_csv(src, index=False)
    out = tmp_path / "out.csv"
    out.write_text("previous scores\n")
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        score_file(model, src, out, chunk_rows=50, should_stop=lambda: next(calls) >= 2)
    assert out.read_text() == "previous scores\n"
    with pytest.raises(DataError, match="nope.csv"):
        score_file(model, tmp_path / "nope.csv", tmp_path / "other.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_differences_cover_the_whole_file(model, tmp_path):
    src = tmp_path / "in.csv"
    frame = _frame().assign(extra=1)
    frame.loc[[3, 200], "shop"] = "west"
    frame.to_csv(src, index=False)
    notes = []
    summary = score_file(model, src, tmp_path / "out.csv", chunk_rows=100, on_differences=notes.append)
    assert len(notes) == 1 and notes[0].extra == ["extra"]
    assert summary.differences.unseen == {"shop": 2} and summary.differences.rows == 250


def test_count_data_rows(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,4")
    assert count_data_rows(path) == 2


def test_parquet_file_in_and_out(model, tmp_path):
    """A Parquet input streams like a CSV and a .parquet output holds the same rows as the CSV output."""
    frame = _frame(seed=4)
    frame.to_csv(tmp_path / "in.csv", index=False)
    frame.to_parquet(tmp_path / "in.parquet")
    score_file(model, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=60)
    summary = score_file(model, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=60)
    assert summary.rows == 250 and summary.chunks == 5
    csv_out, pq_out = pd.read_csv(tmp_path / "out.csv"), pd.read_parquet(tmp_path / "out.parquet")
    assert pq_out["key"].tolist() == csv_out["key"].tolist()
    np.testing.assert_allclose(pq_out["score"].to_numpy(), csv_out["score"].to_numpy(), rtol=1e-12)
    assert set(pq_out["shop"]) == {"north", "south", "'=evil()"}


def test_a_row_with_too_many_fields_is_located(model, tmp_path):
    src = tmp_path / "in.csv"
    _frame().to_csv(src, index=False)
    lines = src.read_text().splitlines(keepends=True)
    lines[100] = lines[100].rstrip("\r\n") + ",extra\n"
    src.write_text("".join(lines))
    with pytest.raises(DataError, match=r"in.csv, row 101: has 5 fields where the header has 4"):
        score_file(model, src, tmp_path / "out.csv", chunk_rows=40)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(("busy", "load", "idle"), [(0.1, 1.2, 2), (1.7, 0.0, 1), (None, 1.2, 1), (None, 0.2, 2)])
def test_idle_cores_counts_the_work_running_now_not_what_just_ended(monkeypatch, busy, load, idle):
    """On 2 cores: a load average of 1.2 left by a training that has ended does not hold scoring to one
    thread when the cores are idle now; where /proc/stat cannot be read the load average decides."""
    import os

    from engine.scoring import files

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(files, "busy_cores", lambda cores: busy)
    assert files.idle_cores() == idle


@pytest.mark.skipif(not __import__("os").path.exists("/proc/stat"), reason="Linux /proc/stat only")
def test_busy_cores_reads_the_machine_now():
    from engine.scoring.files import busy_cores

    assert 0.0 <= busy_cores(2, window=0.05) <= 2.0
