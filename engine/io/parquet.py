"""Reading Parquet (a file, or a folder of parts as Spark and Dask write them) as the engine reads CSV.

Parquet carries its own column types, so there is no dialect or type sniffing: columns come as pandas
gives them from Arrow. Used by streamed and cluster scoring; ``read_parquet`` gives a whole file for
loading into the window (engine.io.load dispatches here by ``is_parquet``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from engine.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: str | Path) -> bool:
    """A Parquet file (by its suffix) or a folder of Parquet parts."""
    path = Path(path)
    return path.suffix.lower() in PARQUET_SUFFIXES or (path.is_dir() and any(path.glob("*.parquet")))


def _dataset(path: str | Path) -> pads.Dataset:
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    try:
        return pads.dataset(str(path), format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot be read as Parquet ({str(exc).splitlines()[0]})", file=str(path)) from None


def parquet_rows(path: str | Path) -> int:
    """Rows in a Parquet file or folder, from the footers (no data read)."""
    return int(_dataset(path).count_rows())


def iter_parquet_chunks(path: str | Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """DataFrames of ``chunk_rows`` rows (the last may be shorter), with a RangeIndex continuing across
    chunks like engine.io.iter_csv_chunks; memory stays bounded by the chunk."""
    dataset = _dataset(path)
    pending: list[pa.RecordBatch] = []
    pending_rows, start = 0, 0
    try:
        for batch in dataset.to_batches(batch_size=min(chunk_rows, 1 << 16)):
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, chunk_rows), start)
                start += chunk_rows
                rest = table.slice(chunk_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows:
            yield _frame(pa.Table.from_batches(pending), start)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot be read as Parquet ({str(exc).splitlines()[0]})", file=str(path),
                        row=start + 1) from None


def _frame(table: pa.Table, start: int) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A whole Parquet file or folder as one DataFrame."""
    try:
        return _dataset(path).to_table().to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot be read as Parquet ({str(exc).splitlines()[0]})", file=str(path)) from None


def load_parquet(path: str | Path):
    """A Parquet file or folder as engine.io's LoadedFile (what File > Open and ``load`` give for a CSV):
    the frame with Parquet's own types, no dialect and no conversion plan. engine.io.read_csv dispatches
    here for a .parquet / .pq path or a folder of parts."""
    from engine.io import LoadedFile

    frame = read_parquet(path)
    frame.columns = [str(c) for c in frame.columns]
    return LoadedFile(path=str(path), frame=frame, encoding="parquet", delimiter="")
