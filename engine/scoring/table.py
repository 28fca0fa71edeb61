"""The scores file: its columns, how a scored chunk becomes rows of it, and how those rows are written.

Per record: ``key``, ``score``, ``severity``, ``flagged``, [``rule``,] the top contributing features with their
shares (``feature_1``, ``share_1``, ...), then the scored file's own columns (renamed ``NAME (original)``
where a name is taken by the lead columns). Written by engine.scoring.files (one process) and
engine.scoring.cluster (Dask workers), read back by engine.reports.scores_file: this module is the one
place that knows the layout. Writing goes through pyarrow (CSV and Parquet): pandas' ``to_csv`` formats
every cell in Python and took as long as scoring the chunk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from engine.errors import DataError
from engine.scoring.severity import top_features
from engine.spreadsheet import neutralise_frame

LEAD = ("key", "score", "severity", "flagged")
OPTIONAL_LEAD = ("rule",)  # the rule that treated a record as normal (score --project)
ORIGINAL_SUFFIX = " (original)"
FEATURE_COLUMN = re.compile(r"^(feature|share)_(\d+)$")


def feature_column(kind: str, rank: int) -> str:
    return f"{kind}_{rank}"


def scores_table(frame: pd.DataFrame, result: Any, keys: list[str], threshold: float | None,
                 top_k_features: int = 3, rule_names: np.ndarray | None = None) -> pd.DataFrame:
    """One chunk of the scores file (text cells neutralised against formula injection). With
    ``rule_names`` (engine.rules.matching_rule) a record a rule matches is not flagged and the ``rule``
    column names the rule."""
    scores = np.asarray(result.scores, dtype=np.float64)
    table: dict[str, Any] = {
        "key": keys, "score": scores, "severity": np.round(np.asarray(result.severity, dtype=np.float64), 2),
        "flagged": scores >= threshold if threshold is not None else np.zeros(len(scores), dtype=bool)}
    if rule_names is not None:
        table["flagged"] = table["flagged"] & (np.asarray(rule_names, dtype=object) == "")
        table["rule"] = np.asarray(rule_names, dtype=object)
    names, shares = top_features(result.contributions, result.columns, top_k_features)
    for rank, (col_names, col_shares) in enumerate(zip(names, shares, strict=True), start=1):
        table[feature_column("feature", rank)] = col_names
        table[feature_column("share", rank)] = np.round(col_shares, 4)
    out = pd.DataFrame(table)
    originals = frame.reset_index(drop=True)
    originals = originals.rename(columns={c: f"{c}{ORIGINAL_SUFFIX}" for c in originals.columns if c in out.columns})
    return neutralise_frame(pd.concat([out, originals], axis=1))


def split_columns(columns: list[str]) -> tuple[int, list[str]]:
    """(number of feature_i/share_i ranks, the original columns) of a scores file's header."""
    ranks = sorted({int(m.group(2)) for c in columns if (m := FEATURE_COLUMN.match(str(c)))})
    lead = set(LEAD) | {c for c in OPTIONAL_LEAD if c in columns}
    lead |= {feature_column(kind, r) for r in ranks for kind in ("feature", "share")}
    return len(ranks), [c for c in columns if c not in lead]


def original_name(column: str) -> str:
    return column[: -len(ORIGINAL_SUFFIX)] if str(column).endswith(ORIGINAL_SUFFIX) else column


def top_records(path: str | Path, n: int, batch_rows: int = 200_000) -> pd.DataFrame:
    """The original columns of the ``n`` highest-scored rows of a Parquet scores file, in file order,
    read batch by batch (memory holds ``n`` + one batch, whatever the file's size): what the window
    loads into the review queue after scoring a big file on a cluster."""
    import pyarrow.dataset as pads

    dataset = pads.dataset(str(path), format="parquet")
    _, originals = split_columns(dataset.schema.names)
    best: pa.Table | None = None
    offset = 0
    for batch in dataset.to_batches(columns=["score", *originals], batch_size=batch_rows):
        table = pa.Table.from_batches([batch]).append_column("__row", pa.array(
            np.arange(offset, offset + batch.num_rows, dtype=np.int64)))
        offset += batch.num_rows
        best = table if best is None else pa.concat_tables([best, table])
        if best.num_rows > n:
            scores = best.column("score").to_numpy(zero_copy_only=False)
            keep = np.argpartition(-np.nan_to_num(scores, nan=-np.inf), n - 1)[:n]
            best = best.take(pa.array(np.sort(keep)))
    if best is None:
        return pd.DataFrame(columns=[original_name(c) for c in originals])
    frame = best.sort_by("__row").drop(["score", "__row"]).to_pandas()
    return frame.rename(columns={c: original_name(c) for c in frame.columns})


def to_arrow(table: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(table, preserve_index=False)


class ScoresWriter:
    """Appends chunks of the scores file to ``path`` as CSV (RFC 4180 line ends, header once) or, for a
    ``.parquet`` path, as Parquet row groups. Parquet needs one schema for the whole file: later chunks
    are cast to the first chunk's; a column whose type changes part-way is refused, naming it."""

    def __init__(self, path: str | Path, parquet: bool, source: str = ""):
        self.path, self.parquet, self.source = Path(path), parquet, source
        self._handle = None
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def write(self, table: pd.DataFrame | pa.Table) -> None:
        data = table if isinstance(table, pa.Table) else to_arrow(table)
        if self.parquet:
            self._write_parquet(data)
        else:
            if self._handle is None:
                self._handle = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            pacsv.write_csv(data, self._handle, pacsv.WriteOptions(include_header=self.rows == 0, eol="\r\n"))
        self.rows += data.num_rows

    def _write_parquet(self, data: pa.Table) -> None:
        if self._writer is None:
            self._schema = data.schema.remove_metadata()
            self._writer = pq.ParquetWriter(self.path, self._schema)
        elif not data.schema.remove_metadata().equals(self._schema):
            data = self._cast(data)
        self._writer.write_table(data.replace_schema_metadata(None) if data.schema.metadata else data)

    def _cast(self, data: pa.Table) -> pa.Table:
        columns = []
        for field in self._schema:
            column = data.column(field.name)
            if column.type.equals(field.type):
                columns.append(column)
                continue
            if pa.types.is_null(column.type) or column.null_count == len(column):
                columns.append(pa.nulls(len(column), field.type))
                continue
            try:
                columns.append(column.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DataError(f"the column holds {column.type} from row {self.rows + 2} on where earlier rows "
                                f"held {field.type}: a Parquet file keeps one type per column (write CSV instead)",
                                file=self.source or None, column=original_name(field.name)) from None
        return pa.Table.from_arrays(columns, schema=self._schema)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.rows == 0 and not self.path.exists():
            self.path.touch()

    def __enter__(self) -> ScoresWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
