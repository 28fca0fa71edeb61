"""Reading a whole CSV (``read_csv``) or its chunks (``iter_csv_chunks``) on pyarrow's multithreaded
parser; Python's csv module runs only to locate an error the fast parser already found."""

from __future__ import annotations

import gzip
import lzma
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from engine.errors import DataError
from engine.io.columns import _apply_plan, _clean_values, _to_frame
from engine.io.dialect import (
    _has_odd_quote_lines,
    _head,
    _header,
    _locate_bad_rows,
    _record_rows,
    _sniff_delimiter,
    find_bad_rows,
)
from engine.io.source import (
    MAX_LISTED,
    _check_path,
    _compression_of,
    _decompress,
    _has_content,
    _normalise_newlines,
    _open_binary,
    _raw_bytes,
    _to_utf8,
    open_decompressed,
)

NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
               "<NA>", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null", "None"]


@dataclass
class LoadedFile:
    path: str
    frame: pd.DataFrame
    encoding: str = "utf-8"
    delimiter: str = ","
    problems: list[str] = field(default_factory=list)
    # How each column was converted from text ('int', 'float', 'float:thousands_comma', 'datetime:%d.%m.%Y',
    # 'string', ...): replayed by iter_csv_chunks so chunks match a full load.
    column_plan: dict[str, str] = field(default_factory=dict)
    compression: str | None = None  # 'gzip', 'zip', 'bz2', 'xz' or None
    newlines_in_values: bool = False  # some quoted values span lines
    # File row (header = 1) of each record where that is not simply index + 2 (blank lines), else None.
    record_rows: np.ndarray | None = None
    # Rows left out because they had the wrong number of fields (read with skip_bad_rows=True):
    # [(file row, fields found)], listed in problems and counted in reports.
    skipped_rows: list[tuple[int, int]] = field(default_factory=list)

    def row_number(self, index: int) -> int:
        """The file row (header = row 1) of the record at ``index`` (0-based position in ``frame``)."""
        return int(self.record_rows[index]) if self.record_rows is not None else int(index) + 2


# ------------------------------------------------------------------------------------------ reading

def _arrow_read(data: bytes, names: list[str], delimiter: str, header_end: int, multiline: bool,
                name: str) -> tuple[pa.Table, int]:
    invalid: list[Any] = []

    def on_invalid(row) -> str:
        invalid.append(row)
        return "skip"

    longest = max(len(_head(data, min_lines=3, min_bytes=0)), 1 << 20)
    read_options = pacsv.ReadOptions(column_names=names, block_size=min(max(4 << 20, 4 * longest), 1 << 30))
    parse_options = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=multiline,
                                       invalid_row_handler=on_invalid)
    convert_options = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=NULL_VALUES,
                                           strings_can_be_null=True, quoted_strings_can_be_null=True)
    body = pa.py_buffer(data)[header_end:]
    try:
        table = pacsv.read_csv(pa.BufferReader(body), read_options=read_options, parse_options=parse_options,
                               convert_options=convert_options)
    except pa.ArrowInvalid as exc:
        _locate_bad_rows(data, names, delimiter, name, strict=True)
        raise DataError(f"cannot be parsed as CSV ({str(exc).splitlines()[0]})", file=name) from None
    return table, len(invalid)


def read_csv(path: str | Path, skip_bad_rows: bool = False) -> LoadedFile:
    """Read a CSV (plain, .gz, .zip, .bz2, .xz) into a DataFrame, detecting encoding and delimiter.

    Raises DataError naming the file (and row/column) when the file cannot be used at all; smaller
    problems (text in a numeric column, infinite values...) are listed in ``problems`` and the values
    concerned are treated as missing. Rows with the wrong number of fields raise BadRowsError (listing
    them), or with ``skip_bad_rows`` are left out and listed in ``skipped_rows`` and ``problems``.
    """
    from engine.io.parquet import is_parquet, load_parquet

    if is_parquet(path):  # a file or a folder of parts, with its own column types
        return load_parquet(path)
    try:
        return _read_csv(str(path), Path(path), skip_bad_rows)
    except MemoryError:
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        raise DataError(f"too large to load into memory ({size / 1e9:.1f} GB on disk); score it in chunks "
                        "(the score command streams large files)", file=str(path)) from None


def _read_csv(name: str, path: Path, skip_bad_rows: bool = False) -> LoadedFile:
    raw = _raw_bytes(path, name)
    compression = _compression_of(path, raw[:8])
    data = _decompress(raw, compression, name)
    del raw
    if not _has_content(data):
        raise DataError("the file is empty", file=name)
    data, encoding, problems = _to_utf8(data, name)
    data = _normalise_newlines(data)
    if not _has_content(data):
        raise DataError("the file is empty", file=name)
    head = _head(data)
    delimiter = _sniff_delimiter(head.decode("utf-8", errors="replace"), complete=len(head) == len(data))
    names, header_end, header_notes = _header(data, delimiter, name)
    problems += header_notes
    if not _has_content(data, header_end):
        raise DataError("the file has a header row but no data rows", file=name)

    multiline = _has_odd_quote_lines(data)
    if multiline:  # find unterminated quotes before pyarrow hides them inside one long value
        _locate_bad_rows(data, names, delimiter, name, strict=True)
    table, n_invalid = _arrow_read(data, names, delimiter, header_end, multiline, name)
    skipped: list[tuple[int, int]] = []
    if n_invalid:
        if not skip_bad_rows:
            _locate_bad_rows(data, names, delimiter, name, strict=False)
            raise DataError(f"{n_invalid} rows do not have {len(names)} fields as in the header", file=name)
        skipped = find_bad_rows(data, names, delimiter, name)  # pyarrow's handler already left them out
        listed = ", ".join(str(r) for r, _ in skipped[:MAX_LISTED]) + (", ..." if len(skipped) > MAX_LISTED else "")
        problems.append(f"{len(skipped):,} bad row(s) skipped (not {len(names)} fields as in the header): "
                        f"row(s) {listed}")
    header_lines = data.count(b"\n", 0, header_end)
    record_rows = _record_rows(data, table.num_rows, header_lines, multiline, tuple(r for r, _ in skipped))
    del data

    def row_of(i: int) -> int:
        return int(record_rows[i]) if record_rows is not None else int(i) + 2

    table, plan, notes = _apply_plan(table, None, row_of)
    problems += notes
    frame = _to_frame(table)
    del table
    problems += _clean_values(frame, row_of)
    return LoadedFile(path=name, frame=frame, encoding=encoding, delimiter=delimiter, problems=problems,
                      column_plan=plan, compression=compression, newlines_in_values=multiline,
                      record_rows=record_rows, skipped_rows=skipped)


def _open_text_stream(path: Path, compression: str | None, name: str):
    f = _open_binary(path)
    if compression is None:
        return f
    try:
        return open_decompressed(f, compression, name, os.fstat(f.fileno()).st_size, streamed=True)
    except BaseException:
        f.close()
        raise


def sniff_like(path: Path, name: str) -> LoadedFile:
    """Dialect and conversion plan from the head of a file, for streaming it."""
    _check_path(path, name)
    with _open_binary(path) as f:
        compression = _compression_of(path, f.read(8))
    try:
        with _open_text_stream(path, compression, name) as stream:
            raw = stream.read(4 << 20)
    except (EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise DataError(f"the {compression or 'file'} cannot be read ({exc})", file=name) from None
    raw = _normalise_newlines(raw)
    cut = raw.rfind(b"\n") + 1 if len(raw) == 4 << 20 else len(raw)
    head = raw[:cut]
    if not head.strip():
        raise DataError("the file is empty", file=name)
    head_utf8, encoding, _ = _to_utf8(head, name)
    sample = _head(head_utf8)  # as read_csv sniffs: csv.reader over the whole 4 MiB took 0.5-3 s per file
    delimiter = _sniff_delimiter(sample.decode("utf-8", errors="replace"),
                                 complete=len(raw) < 4 << 20 and len(sample) == len(head_utf8))
    names, header_end, _ = _header(head_utf8, delimiter, name)
    if not head_utf8[header_end:].strip():
        raise DataError("the file has a header row but no data rows", file=name)
    multiline = _has_odd_quote_lines(head_utf8)
    table, _ = _arrow_read(head_utf8, names, delimiter, header_end, multiline, name)
    _, plan, _ = _apply_plan(table, None)
    return LoadedFile(path=name, frame=pd.DataFrame(columns=names), encoding=encoding, delimiter=delimiter,
                      column_plan=plan, compression=compression, newlines_in_values=multiline)


_PLAN_FAMILIES = {"int": "number", "float": "number", "timestamp": "date", "datetime": "date"}


def _merge_plan(own: str, reference: str) -> str:
    """The reference file decides what a column is (number, date, text); this file decides how it is
    written (decimal commas, date format)."""
    own_kind, ref_kind = own.partition(":")[0], reference.partition(":")[0]
    if own_kind == "empty":
        return reference
    if ref_kind == "empty" or _PLAN_FAMILIES.get(own_kind, own_kind) == _PLAN_FAMILIES.get(ref_kind, ref_kind):
        return own
    return reference


def iter_csv_chunks(path: str | Path, chunk_rows: int = 200_000,
                    like: LoadedFile | None = None) -> Iterator[pd.DataFrame]:
    """Stream a CSV (possibly larger than memory) as DataFrames of ``chunk_rows`` rows.

    Encoding, delimiter and header come from the file itself (its first 4 MiB). Each column is converted
    as in ``like`` (a LoadedFile of this file, or of the file a model was trained on) where ``like`` has
    that column, else as the first 4 MiB suggest. The frames have the same columns, dtypes and coercions
    as ``read_csv`` gives (values that do not convert become missing) and a RangeIndex continuing across
    chunks (file row = index + 2 when the file has no blank lines).
    """
    name = str(path)
    path = Path(path)
    own = sniff_like(path, name)  # this file's own dialect and header, whatever ``like`` says
    names = list(own.column_plan)
    if like is not None:  # convert shared columns exactly as the reference file was converted
        own.column_plan.update({n: _merge_plan(own.column_plan[n], p) for n, p in like.column_plan.items()
                                if n in own.column_plan})
    compression = own.compression
    chosen = own.encoding
    if like is not None and like.path == name and like.encoding in ("cp1252", "latin-1"):
        chosen = like.encoding  # a full read saw non-UTF-8 bytes that the first 4 MiB may not show
    encoding = {"utf-8-sig": "utf8", "utf-8": "utf8"}.get(chosen, chosen)
    read_options = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=8 << 20, encoding=encoding)
    parse_options = pacsv.ParseOptions(delimiter=own.delimiter, newlines_in_values=own.newlines_in_values or (
        like is not None and like.newlines_in_values))
    convert_options = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=NULL_VALUES,
                                           strings_can_be_null=True, quoted_strings_can_be_null=True)
    start = 0
    try:
        with _open_text_stream(path, compression, name) as stream:
            if own.encoding == "utf-8-sig" and stream.read(3) != b"\xef\xbb\xbf":
                raise DataError("expected a UTF-8 byte-order mark at the start", file=name)
            reader = pacsv.open_csv(stream, read_options=read_options, parse_options=parse_options,
                                    convert_options=convert_options)
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in reader:
                pending.append(batch)
                pending_rows += batch.num_rows
                while pending_rows >= chunk_rows:
                    table = pa.Table.from_batches(pending)
                    yield chunk_frame(table.slice(0, chunk_rows), own, start)
                    start += chunk_rows
                    rest = table.slice(chunk_rows)
                    pending, pending_rows = rest.to_batches(), rest.num_rows
            if pending_rows:
                yield chunk_frame(pa.Table.from_batches(pending), own, start)
    except pa.ArrowInvalid as exc:
        detail = str(exc).splitlines()[0]
        hint = ("; the file is not UTF-8 further on: pass like=read_csv(file) so its encoding is known"
                if "UTF8" in detail else "")
        # no row: the reader parses blocks ahead in threads, so the rows delivered say little about where
        raise DataError(f"cannot be parsed as CSV ({detail}){hint}", file=name) from None
    except EOFError:
        raise DataError(f"the {compression} file is truncated (it ends before the end of its compressed data)",
                        file=name) from None
    except (zlib.error, lzma.LZMAError, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
        raise DataError(f"the {compression} file is damaged ({exc})", file=name) from None


def chunk_frame(table: pa.Table, like: LoadedFile, start: int) -> pd.DataFrame:
    table, _, _ = _apply_plan(table, like.column_plan)
    frame = _to_frame(table)
    _clean_values(frame)
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame
