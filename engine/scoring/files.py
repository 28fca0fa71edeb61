"""Scoring a file larger than memory (CSV, or Parquet: a file or a folder of parts): read it in chunks,
score each chunk, append it to the output (CSV, or Parquet for a ``.parquet`` path).

Memory stays bounded by the chunk size (the model, one chunk and its scores). The output is
written to a temporary file beside the destination and renamed at the end, so an error, a
cancel or a kill leaves no half-written scores file. The layout is engine.scoring.table's;
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

from engine.atomic import atomic_output
from engine.errors import DataError, stop_if_asked
from engine.io.parquet import is_parquet
from engine.io.source import open_input
from engine.model_reuse import (
    SchemaDifferences,
    carried_schema,
    check_values,
    compare_schema,
    model_threshold,
)
from engine.scoring.table import ScoresWriter, scores_table

ProgressCallback = Callable[..., None]
StopCallback = Callable[[], bool]
DEFAULT_CHUNK_ROWS = 50_000  # measured: 100k-row chunks peak at ~1 GB with one-hot matrices, 50k at ~0.6 GB, same speed


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
    workers: list[str] = field(default_factory=list)  # host:pid of the processes that scored (cluster runs)
    by_rule: dict[str, int] = field(default_factory=dict)  # rule name -> records it treated as normal
    above_by_rule: int = 0  # records at or above the threshold that a rule kept out of the flagged ones
    columns: list[str] = field(default_factory=list)  # the scored file's columns
    drift: Any = None  # engine.drift.DriftReport: does the file look like the data the model learnt?

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def set_threads(n: int) -> None:
    """Scoring in this process on ``n`` cores: torch and BLAS operations on one thread each, and up to
    ``n`` batches scored side by side (engine.detectors.base.set_scoring_threads). An operation split over
    more threads than free cores stalls at every step on a shared machine (measured, 50k ledger rows,
    autoencoder, 2 busy cores: 1 thread 1.5 s, torch on 2 threads 32 s); independent batches do not."""
    import sys

    from threadpoolctl import threadpool_limits

    from engine.detectors.base import set_scoring_threads

    threadpool_limits(limits=1)
    set_scoring_threads(n)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)


def idle_cores() -> int:
    """Cores not busy now: the cores this process may use less those the machine's other work keeps busy
    over a tenth of a second (``busy_cores``; the 1-minute load average where /proc/stat is missing), at
    least 1. The load average also counts work that just ended (the training before a scoring run) and
    left a 2-core machine at one thread: 300k ledger rows, auto, idle machine, 1 thread 6.9 / 6.4 s, 2
    threads 5.3 / 5.6 s. At load 11 on 2 cores 2 threads were no slower to speak of (26.9 / 25.3 s
    against 24.1 / 24.5 s)."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    busy = busy_cores(cores)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def busy_cores(cores: int, window: float = 0.1) -> float | None:
    """How many of ``cores`` the machine kept busy over ``window`` seconds (from /proc/stat; None where
    it cannot be read)."""
    import time

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [int(v) for v in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if len(fields) < 5:
            return None
        return sum(fields[:8]), fields[3] + fields[4]  # all jiffies (guest time is inside user), idle + iowait

    first = sample()
    time.sleep(window)
    second = sample()
    if first is None or second is None or second[0] <= first[0]:
        return None
    idle_share = (second[1] - first[1]) / (second[0] - first[0])
    return max(0.0, 1.0 - idle_share) * cores


def count_data_rows(path: str | Path, block: int = 1 << 24) -> int:
    """Lines after the header (for the progress bar; quoted line breaks make it an estimate); the row
    count from the footers of a Parquet file or folder."""
    if is_parquet(path):
        from engine.io.parquet import parquet_rows

        return parquet_rows(path)
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
    from engine.io import iter_csv_chunks

    path = Path(path)
    if is_parquet(path):
        from engine.io.parquet import iter_parquet_chunks

        yield from iter_parquet_chunks(path, chunk_rows)
        return
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "not a file", file=str(path))
    try:
        yield from iter_csv_chunks(path, chunk_rows)
    except DataError as exc:
        if exc.row is None and "cannot be parsed as CSV" in str(exc):
            located = locate_malformed_row(path)
            if located is not None:
                raise located from None
        raise


def read_ahead(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The chunks of ``chunks``, the next one read in a background thread while the caller scores the
    current one (the reader and the model both release the GIL; memory holds one chunk more)."""
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, chunks, end)
        while True:
            chunk = pending.result()
            if chunk is end:
                return
            pending = pool.submit(next, chunks, end)
            yield chunk


def locate_malformed_row(path: str | Path) -> DataError | None:
    """The first row whose number of fields differs from the header's, as a located DataError (the
    parser reads ahead in threads and cannot say where it stopped; this second look, on the error path
    only, can). The cluster path reports a malformed partition through the same function."""
    path = Path(path)
    delimiter = _sniff_delimiter(path)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return None
        for row in reader:
            if len(row) != len(header) and row:
                return DataError(f"has {len(row)} fields where the header has {len(header)}", file=str(path),
                                 row=reader.line_num)
    return None


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


def score_chunk(model: Any, chunk: pd.DataFrame, schema: Any, offset: int, threshold: float | None,
                top_k_features: int, rules: Sequence[Any] = ()) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """A chunk that starts at row ``offset`` of the whole file as rows of the scores file (one pass of
    the model, no expected values: the file does not hold them), with its scores and the name of the rule
    that matched each row (None without rules). Workers of a cluster job call this too."""
    result = model.score(chunk, expected=False)
    names = None
    if rules:
        from engine.rules import matching_rule

        names = matching_rule(rules, chunk)
    table = scores_table(chunk, result, chunk_keys(chunk, schema, offset), threshold, top_k_features,
                         rule_names=names)
    return table, np.asarray(result.scores, dtype=np.float64), names


def score_file(model: Any, csv_path: str | Path, out_path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
              threshold: float | None = None, top_k_features: int = 3, progress: ProgressCallback | None = None,
              should_stop: StopCallback | None = None, on_differences: Callable[[SchemaDifferences], None] | None = None,
              rules: Sequence[Any] = ()) -> StreamSummary:
    """Score ``csv_path`` (CSV or Parquet) with a fitted model chunk by chunk into ``out_path`` (CSV, or
    Parquet when its name ends in .parquet).

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
    from concurrent.futures import ThreadPoolExecutor

    with atomic_output(out_path) as tmp, ScoresWriter(tmp, is_parquet(out_path), str(csv_path)) as writer, \
            ThreadPoolExecutor(1, thread_name_prefix="write-behind") as writes:
        written = None  # the previous chunk's write, done in the background while this chunk scores
        for chunk in read_ahead(iter_chunks(csv_path, chunk_rows)):
            stop_if_asked(should_stop, "scoring cancelled: no scores file written")
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
            table, scores, names = score_chunk(model, chunk, schema, summary.rows, value, top_k_features, rules)
            monitor.add(chunk, scores)
            if names is not None:
                for name, count in zip(*np.unique(names[names != ""], return_counts=True), strict=True):
                    summary.by_rule[str(name)] = summary.by_rule.get(str(name), 0) + int(count)
                if value is not None:
                    summary.above_by_rule += int(((scores >= value) & (names != "")).sum())
            if written is not None:
                written.result()
            written = writes.submit(writer.write, table)
            summary.rows += len(chunk)
            summary.flagged += int(table["flagged"].sum())
            summary.chunks += 1
            if progress is not None:
                elapsed = time.perf_counter() - start
                progress(min(summary.rows / total, 1.0) if total else 0.0,
                         f"scored {summary.rows:,} of {total:,} rows",
                         rows=summary.rows, rows_per_second=summary.rows / max(elapsed, 1e-9))
        if written is not None:
            written.result()
        if diff is None:
            raise DataError("the file has no data rows", file=str(csv_path))
    summary.differences = diff
    summary.drift = monitor.report(diff)
    summary.seconds = time.perf_counter() - start
    return summary
