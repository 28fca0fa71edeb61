"""Scoring a CSV larger than memory: read it in chunks, score each chunk, append it to the output.

Memory stays bounded by the chunk size (the model, one chunk and its scores). The output is
written to a temporary file beside the destination and renamed at the end, so an error, a
cancel or a kill leaves no half-written scores file. The output has, per record: key, score,
severity, flagged, the top contributing features with their shares, then the original columns;
chunked and one-shot scoring give the same file.
"""

from __future__ import annotations

import csv
import gzip
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import Cancelled, DataError
from engine.io.source import open_input
from engine.model_reuse import (
    SchemaDifferences,
    carried_schema,
    check_values,
    compare_schema,
    model_threshold,
)
from engine.reports.queue import top_features
from engine.reports.safety import atomic_output, neutralise_frame

ProgressCallback = Callable[..., None]
StopCallback = Callable[[], bool]
DEFAULT_CHUNK_ROWS = 50_000  # measured: 100k-row chunks peak at ~1 GB with one-hot matrices, 50k at ~0.6 GB, same speed
OUTPUT_LEAD = ("key", "score", "severity", "flagged")


@dataclass
class StreamSummary:
    out_path: str
    rows: int = 0
    flagged: int = 0
    chunks: int = 0
    seconds: float = 0.0
    threshold: float | None = None
    threshold_method: str = ""
    differences: SchemaDifferences = field(default_factory=SchemaDifferences)
    by_rule: dict[str, int] = field(default_factory=dict)  # rule name -> records it treated as normal
    above_by_rule: int = 0  # records at or above the threshold that a rule kept out of the flagged ones
    columns: list[str] = field(default_factory=list)  # the scored file's columns
    drift: Any = None  # engine.drift.DriftReport: does the file look like the data the model learnt?

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def count_data_rows(path: str | Path, block: int = 1 << 24) -> int:
    """Lines after the header (for the progress bar; quoted line breaks make it an estimate)."""
    lines, last = 0, b"\n"
    with open_input(path) as handle:  # decompressed by magic bytes, within the expansion limit
        while chunk := handle.read(block):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def _sniff_delimiter(path: Path) -> str:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        head = handle.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head.split("\n", 1)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def iter_chunks(path: str | Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of ``chunk_rows`` rows; the data layer's reader (same dialect detection as loading a
    file) when it has one, else pandas' chunked reader."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "not a file", file=str(path))
    try:
        from engine.io import iter_csv_chunks  # type: ignore[attr-defined]
    except ImportError:
        iter_csv_chunks = None
    if iter_csv_chunks is not None:
        yield from iter_csv_chunks(path, chunk_rows)
        return
    delimiter = _sniff_delimiter(path)
    rows_before = 0
    try:
        reader = pd.read_csv(path, sep=delimiter, chunksize=chunk_rows, encoding="utf-8")
        for chunk in reader:
            rows_before += len(chunk)
            yield chunk
    except UnicodeDecodeError:
        raise DataError("is not UTF-8 text", file=str(path), row=rows_before + 2) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot be read as CSV ({exc})", file=str(path)) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=str(path)) from None


def chunk_keys(frame: pd.DataFrame, schema: Any, offset: int) -> list[str]:
    """Record keys as the verdict store makes them (engine.feedback.record_keys) for rows that start
    at ``offset`` in the whole file: identifier values, or ``#<position>:<hash>`` with the position
    in the whole file."""
    try:
        from engine.feedback import record_keys
    except ImportError:  # pragma: no cover
        return [str(offset + i) for i in range(len(frame))]
    keys = [str(k) for k in record_keys(frame, schema)]
    if offset and keys and keys[0].startswith("#"):
        keys = [f"#{offset + i}:{k.partition(':')[2]}" for i, k in enumerate(keys)]
    return keys


def _tidy_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-number float columns (an int column with a gap) written as integers, so a chunk with a
    missing value writes ``5`` like a chunk without one."""
    out = frame
    for name in frame.columns:
        s = frame[name]
        if pd.api.types.is_float_dtype(s):
            finite = s.dropna().to_numpy()
            if len(finite) and np.all(np.isfinite(finite)) and np.all(np.mod(finite, 1) == 0) and np.all(
                    np.abs(finite) < 2**53):
                if out is frame:
                    out = frame.copy()
                out[name] = s.astype("Int64")
    return out


def scores_table(frame: pd.DataFrame, result: Any, keys: list[str], threshold: float | None,
                 top_k_features: int = 3, rule_names: np.ndarray | None = None) -> pd.DataFrame:
    """One chunk of the scores file: key, score, severity, flagged, [rule,] top features, original
    columns. With ``rule_names`` (engine.rules.matching_rule) a record a rule matches is not flagged
    and the ``rule`` column names the rule."""
    scores = np.asarray(result.scores, dtype=np.float64)
    table: dict[str, Any] = {
        "key": keys, "score": scores, "severity": np.round(np.asarray(result.severity, dtype=np.float64), 2),
        "flagged": scores >= threshold if threshold is not None else np.zeros(len(scores), dtype=bool)}
    if rule_names is not None:
        table["flagged"] = table["flagged"] & (np.asarray(rule_names, dtype=object) == "")
        table["rule"] = np.asarray(rule_names, dtype=object)
    names, shares = top_features(result.contributions, result.columns, top_k_features)
    for rank, (col_names, col_shares) in enumerate(zip(names, shares, strict=True), start=1):
        table[f"feature_{rank}"] = col_names
        table[f"share_{rank}"] = np.round(col_shares, 4)
    out = pd.DataFrame(table)
    originals = _tidy_integers(frame.reset_index(drop=True))
    originals = originals.rename(columns={c: f"{c} (original)" for c in originals.columns if c in out.columns})
    return pd.concat([out, originals], axis=1)


def score_csv(model: Any, csv_path: str | Path, out_path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
              threshold: float | None = None, top_k_features: int = 3, progress: ProgressCallback | None = None,
              should_stop: StopCallback | None = None, on_differences: Callable[[SchemaDifferences], None] | None = None,
              rules: Sequence[Any] = ()) -> StreamSummary:
    """Score ``csv_path`` with a fitted model chunk by chunk into ``out_path`` (CSV).

    The first chunk is checked against the model's schema before anything is written: a file that
    does not fit (missing or retyped feature columns) raises SchemaMismatchError naming the columns.
    ``on_differences`` is called once with the first chunk's differences (to show them early);
    the summary's ``differences`` cover the whole file. ``rules`` (engine.rules.Rule, from a
    project) treat the records they match as normal: not flagged, named in a ``rule`` column,
    counted in the summary.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    csv_path, out_path = Path(csv_path), Path(out_path)
    start = time.perf_counter()
    total = count_data_rows(csv_path) if csv_path.is_file() else 0
    value, method = model_threshold(model, threshold)
    summary = StreamSummary(out_path=str(out_path), threshold=value, threshold_method=method)
    diff: SchemaDifferences | None = None
    schema = None
    from engine.drift import DriftMonitor

    monitor = DriftMonitor(model, value, file=str(csv_path))
    with atomic_output(out_path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        for chunk in iter_chunks(csv_path, chunk_rows):
            if should_stop is not None and should_stop():
                raise Cancelled("scoring cancelled: no scores file written")
            if diff is None:
                diff = compare_schema(model, chunk.columns, file=str(csv_path))
                check_values(model, chunk, diff, first=True)
                diff.raise_if_unfit()
                schema = carried_schema(model, chunk.columns)
                summary.columns = [str(c) for c in chunk.columns]
                if on_differences is not None:
                    on_differences(diff)
            else:
                if list(chunk.columns) != list(schema.names):  # pragma: no cover - the reader keeps the header
                    raise DataError("the columns changed part-way through the file", file=str(csv_path),
                                    row=summary.rows + 2)
                check_values(model, chunk, diff)
            result = model.score(chunk)
            monitor.add(chunk, result.scores)
            keys = chunk_keys(chunk, schema, summary.rows)
            names = None
            if rules:
                from engine.rules import matching_rule

                names = matching_rule(rules, chunk)
                for name, count in zip(*np.unique(names[names != ""], return_counts=True), strict=True):
                    summary.by_rule[str(name)] = summary.by_rule.get(str(name), 0) + int(count)
                if value is not None:
                    summary.above_by_rule += int(((np.asarray(result.scores) >= value) & (names != "")).sum())
            table = scores_table(chunk, result, keys, value, top_k_features, rule_names=names)
            # RFC 4180 line ends: a field holding a lone CR or LF is then quoted, so it stays one cell
            neutralise_frame(table).to_csv(handle, header=summary.chunks == 0, index=False, lineterminator="\r\n")
            summary.rows += len(chunk)
            summary.flagged += int(table["flagged"].sum())
            summary.chunks += 1
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress(min(summary.rows / total, 1.0) if total else 0.0,
                         f"scored {summary.rows:,} of {total:,} rows",
                         rows=summary.rows, rows_per_second=summary.rows / max(elapsed, 1e-9))
        if diff is None:
            raise DataError("the file has no data rows", file=str(csv_path))
        handle.flush()
    summary.differences = diff
    summary.drift = monitor.report(diff)
    summary.seconds = time.perf_counter() - start
    return summary
