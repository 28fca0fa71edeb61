"""Scoring a file on a Dask cluster: local worker processes (``local:N``) or a scheduler's address.

The file is split into partitions (``dask.dataframe.read_csv`` with a block size, or ``read_parquet``);
each worker converts its partition as the single-process reader would (engine.io's conversion plan
for the file, sniffed from its head), scores it with engine.scoring.files.score_chunk and writes its
part of the scores file into a temporary folder beside the output; the parts then become one file
(or stay a folder of parts when the output path ends in a slash). The model travels as bytes: the
bundle's files (safetensors weights + JSON), scattered to every worker once, rebuilt and cached in
each worker process by engine.bundle's loader (never a pickled model). Severities come from the
bundle's calibration, so they do not depend on the partition. Needs the ``cluster`` extra (dask and
distributed); nothing here is imported unless ``--cluster`` is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import AnomalyDeskError, DataError
from engine.io.parquet import is_parquet
from engine.scoring.table import ScoresWriter

DEFAULT_BLOCKSIZE = 32 << 20  # bytes of CSV per partition (about 500k ledger rows)
_MODELS: dict[str, Any] = {}  # worker-process cache: bundle digest -> model
_LIKE: dict[str, Any] = {}  # worker-process cache: CSV path -> conversion plan


@dataclass(frozen=True)
class ModelBytes:
    """A model bundle's files as bytes, and their digest (the worker's cache key)."""

    digest: str
    files: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_folder(cls, folder: str | Path) -> ModelBytes:
        from engine.bundle import check_name

        folder = Path(folder)
        if not folder.is_dir():
            raise AnomalyDeskError(f"{folder}: not a model folder")
        files = tuple((check_name(p.name, "bundle file"), p.read_bytes())
                      for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith("."))
        digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data for name, data in files)).hexdigest()
        return cls(digest=digest, files=files)

    def model(self):
        """The model, loaded once per process through the bundle loader (checks, no pickle)."""
        cached = _MODELS.get(self.digest)
        if cached is None:
            from engine.model_reuse import load_model
            from engine.scoring.files import set_threads

            with tempfile.TemporaryDirectory(prefix="anomaly-desk-model-") as tmp:
                for name, data in self.files:
                    (Path(tmp) / name).write_bytes(data)
                cached = _MODELS[self.digest] = load_model(tmp)
            set_threads(1)  # a worker is one core (torch is imported now); parallelism is the workers
        return cached


def parse_cluster(spec: str) -> tuple[str | None, int]:
    """``local:N`` -> (None, N); an address (``tcp://host:8786`` or ``host:8786``) -> (address, 0)."""
    spec = spec.strip()
    if spec.startswith("local"):
        _, _, n = spec.partition(":")
        try:
            workers = int(n) if n else max(1, os.cpu_count() or 1)
        except ValueError:
            raise AnomalyDeskError(f"--cluster {spec}: expected local:N with N a number of workers") from None
        if workers < 1:
            raise AnomalyDeskError("--cluster local:N needs at least one worker")
        return None, workers
    if "://" not in spec:
        spec = f"tcp://{spec}"
    return spec, 0


@contextlib.contextmanager
def connect(spec: str) -> Iterator[Any]:
    """A distributed Client: on an embedded LocalCluster (N processes, one thread each, loopback) or on
    the scheduler at the address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise AnomalyDeskError("--cluster needs Dask: pip install 'anomaly-desk[cluster]' "
                               "(dask[dataframe] and distributed, the same version)") from None
    address, workers = parse_cluster(spec)
    if address is None:
        env = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.ERROR, env=env) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise AnomalyDeskError(f"--cluster {spec}: cannot reach a Dask scheduler there ({exc})") from None
    with client:
        yield client


def describe(client: Any) -> str:
    """One line: where, how many workers and threads."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
    return f"Dask cluster {info.get('address', '?')}: {len(workers)} worker(s), {threads} thread(s)"


def _read_partitions(path: Path, blocksize: int):
    """(delayed partitions, CSV or not) as dask reads them: CSV as text (converted on the worker, as the
    single-process reader converts), Parquet with its own types."""
    import dask
    import dask.dataframe as dd

    with dask.config.set({"dataframe.convert-string": False}):
        if is_parquet(path):
            # partitions of about ``blocksize`` bytes (uncompressed), whole row groups each
            ddf = dd.read_parquet(str(path), split_row_groups="adaptive", blocksize=blocksize)
            return ddf.to_delayed(), False
        from engine.io.reader import NULL_VALUES, sniff_like

        like = sniff_like(path, str(path))
        ddf = dd.read_csv(str(path), dtype=str, keep_default_na=False,
                          na_values=NULL_VALUES, sep=like.delimiter, encoding=like.encoding,
                          # a compressed file cannot be split at byte offsets: one partition
                          blocksize=None if like.compression else blocksize,
                          compression="infer" if like.compression else None)
        return ddf.to_delayed(), True


def _convert_csv_partition(frame: pd.DataFrame, path: str, start: int) -> pd.DataFrame:
    """Text columns of a partition converted with the file's conversion plan (engine.io.reader)."""
    import pyarrow as pa

    from engine.io.reader import chunk_frame, sniff_like

    like = _LIKE.get(path)
    if like is None:
        like = _LIKE[path] = sniff_like(Path(path), path)
    table = pa.Table.from_pandas(frame.astype(object), preserve_index=False,
                                 schema=pa.schema([(str(c), pa.string()) for c in frame.columns]))
    return chunk_frame(table, like, start)


def _score_partition(frame: pd.DataFrame, model_bytes: ModelBytes, index: int, start: int | None, path: str,
                     csv: bool, folder: str, parquet_out: bool, threshold: float | None, top_k: int,
                     schema_names: list[str], rules: tuple = ()) -> dict[str, Any]:
    """Runs on a worker: convert, score and write partition ``index``; returns what the client sums."""
    from engine.model_reuse import carried_schema
    from engine.scoring.files import score_chunk

    model = model_bytes.model()
    offset = start or 0
    if csv:
        frame = _convert_csv_partition(frame, path, offset)
    if list(frame.columns) != list(schema_names):
        raise DataError("the columns changed part-way through the file", file=path, row=offset + 2)
    schema = carried_schema(model, frame.columns)
    table, scores, names = score_chunk(model, frame, schema, offset, threshold, top_k, rules)
    by_rule: dict[str, int] = {}
    above = 0
    if names is not None:
        import numpy as np

        for name, count in zip(*np.unique(names[names != ""], return_counts=True), strict=True):
            by_rule[str(name)] = int(count)
        above = int(((scores >= threshold) & (names != "")).sum()) if threshold is not None else 0
    suffix = ".parquet" if parquet_out else ".csv"
    part = Path(folder) / f"part-{index:06d}{suffix}"
    with ScoresWriter(part, parquet_out, path) as writer:
        if parquet_out:
            writer.write(table)
        else:
            import pyarrow.csv as pacsv

            from engine.scoring.table import to_arrow

            with open(part, "wb") as handle:  # the header once, in the first part
                pacsv.write_csv(to_arrow(table), handle, pacsv.WriteOptions(include_header=index == 0, eol="\r\n"))
            writer.rows = len(table)
    return {"index": index, "rows": len(table), "flagged": int(table["flagged"].sum()), "by_rule": by_rule,
            "above_by_rule": above,
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _merge(folder: Path, out_path: Path, parquet_out: bool, source: str) -> None:
    """The parts, in order, as one file (CSV: bytes after each other; Parquet: row groups)."""
    from engine.atomic import atomic_output

    parts = sorted(folder.glob("part-*"))
    with atomic_output(out_path) as tmp:
        if parquet_out:
            import pyarrow.parquet as pq

            with ScoresWriter(tmp, True, source) as writer:
                for part in parts:
                    writer.write(pq.read_table(part))
        else:
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 22)


def _partition_starts(client: Any, partitions: list, positional: bool) -> list[int | None]:
    """Row offset of each partition in the whole file, where keys need it (no identifier column)."""
    if not positional:
        return [None] * len(partitions)
    import dask

    lengths = client.compute([dask.delayed(len)(p) for p in partitions], sync=True)
    starts, at = [], 0
    for n in lengths:
        starts.append(at)
        at += int(n)
    return starts


def score_on_cluster(client: Any, model_dir: str | Path, in_path: str | Path, out_path: str | Path, *,
                     threshold: float | None = None, top_k_features: int = 3, blocksize: int = DEFAULT_BLOCKSIZE,
                     progress: Callable[..., None] | None = None,
                     on_differences: Callable[[Any], None] | None = None, rules: Any = ()):
    """Score ``in_path`` with the model bundle in ``model_dir`` on the cluster behind ``client`` into
    ``out_path``; the same rows as engine.scoring.files.score_file. Returns its StreamSummary, with
    ``workers``: the process ids that scored partitions (host:pid). ``rules`` as in score_file; the
    drift report of single-process scoring is not made here (``summary.drift`` stays None)."""
    from distributed import as_completed

    from engine.model_reuse import carried_schema, check_values, compare_schema, load_model, model_threshold
    from engine.scoring.files import StreamSummary, iter_chunks, locate_malformed_row

    in_path, out_path = Path(in_path), Path(out_path)
    start_time = time.perf_counter()
    model = load_model(model_dir)
    value, method = model_threshold(model, threshold)
    # the first rows, read here: a file that does not fit the model is refused before any work is sent
    first = next(iter(iter_chunks(in_path, 1000)), None)
    if first is None:
        raise DataError("the file has no data rows", file=str(in_path))
    diff = compare_schema(model, first.columns, file=str(in_path))
    check_values(model, first, diff, first=True)
    diff.raise_if_unfit()
    if on_differences is not None:
        on_differences(diff)
    schema = carried_schema(model, first.columns)
    positional = not any(getattr(c.role, "value", c.role) == "identifier" for c in schema.columns)
    partitions, csv = _read_partitions(in_path, blocksize)
    model_bytes = client.scatter(ModelBytes.from_folder(model_dir), broadcast=True, hash=False)
    as_folder = str(out_path).endswith(("/", os.sep))
    parquet_out = is_parquet(out_path) or as_folder
    parent = out_path.parent if not as_folder else Path(str(out_path).rstrip("/" + os.sep)).parent
    folder = Path(tempfile.mkdtemp(prefix=f".{out_path.name or 'scores'}.", suffix=".parts", dir=parent))
    summary = StreamSummary(out_path=str(out_path), threshold=value, threshold_method=method, differences=diff,
                            columns=[str(c) for c in first.columns])
    workers: set[str] = set()
    try:
        import dask

        try:
            starts = _partition_starts(client, partitions, positional)
            tasks = [dask.delayed(_score_partition, pure=False)(
                part, model_bytes, i, starts[i], str(in_path), csv, str(folder), parquet_out, value,
                top_k_features, list(first.columns), tuple(rules)) for i, part in enumerate(partitions)]
            futures = client.compute(tasks)
            for _, result in as_completed(futures, with_results=True):
                summary.rows += result["rows"]
                summary.flagged += result["flagged"]
                summary.above_by_rule += result["above_by_rule"]
                for name, count in result["by_rule"].items():
                    summary.by_rule[name] = summary.by_rule.get(name, 0) + count
                summary.chunks += 1
                workers.add(result["worker"])
                if progress is not None:
                    elapsed = time.perf_counter() - start_time
                    progress(summary.chunks / len(tasks),
                             f"scored {summary.chunks} of {len(tasks)} partitions ({summary.rows:,} rows)",
                             rows=summary.rows, rows_per_second=summary.rows / max(elapsed, 1e-9))
        except Exception as exc:
            raise _located(exc, in_path, csv, locate_malformed_row) from None
        if as_folder:
            target = Path(str(out_path).rstrip("/" + os.sep))
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(folder, target)
        else:
            _merge(folder, out_path, parquet_out, str(in_path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary.seconds = time.perf_counter() - start_time
    summary.workers = sorted(workers)
    return summary


def _located(exc: Exception, path: Path, csv: bool, locate) -> Exception:
    """A worker's failure as the single-process error: engine errors as they are, a CSV the parser
    could not split into rows as the located row (the same function single-process scoring uses)."""
    if isinstance(exc, AnomalyDeskError):
        return exc
    text = str(exc)
    if csv and ("tokenizing" in text or "Expected" in text or "ParserError" in type(exc).__name__):
        located = locate(path)
        if located is not None:
            return located
    return DataError(f"scoring failed on the cluster ({type(exc).__name__}: {text.splitlines()[0] if text else ''})",
                     file=str(path))
