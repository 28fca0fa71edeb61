"""Parquet input: a file or a folder of parts (as Spark and Dask write them) opens like a CSV."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.errors import DataError
from engine.io import load
from engine.io.parquet import is_parquet


def _frame(start: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(start, start + n), "amount": [1.5 * i for i in range(n)],
                         "account": ["A" if i % 2 else "B" for i in range(n)]})


def test_a_file_and_a_folder_of_parts_load_with_parquets_own_types(tmp_path):
    _frame(0, 40).to_parquet(tmp_path / "one.parquet")
    parts = tmp_path / "parts"
    parts.mkdir()
    _frame(0, 25).to_parquet(parts / "part-0.parquet")
    _frame(25, 15).to_parquet(parts / "part-1.parquet")
    assert is_parquet(tmp_path / "one.parquet") and is_parquet(tmp_path / "x.PQ") and is_parquet(parts)
    (tmp_path / "empty").mkdir()
    assert not is_parquet(tmp_path / "one.csv") and not is_parquet(tmp_path / "empty")
    for path in (tmp_path / "one.parquet", parts):
        loaded, schema = load(path)
        assert len(loaded.frame) == 40 and loaded.encoding == "parquet"
        assert sorted(loaded.frame["id"]) == list(range(40))
        assert loaded.frame["amount"].dtype == "float64" and "amount" in schema.feature_columns


def test_a_damaged_parquet_file_is_a_clear_error_naming_it(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="bad.parquet"):
        load(bad)
