"""Reading CSV files, inferring their schema, and validating them with located errors.

Reading is built on pyarrow's multithreaded CSV parser. Every column is parsed as text first and
then converted here, column by column, with vectorised Arrow kernels: the same conversion "plan"
can then be replayed on the chunks of a file too large for memory (``iter_csv_chunks``), so chunked
scoring sees exactly the values a full load would. Nothing runs a Python loop per row; Python-level
CSV parsing is used only to locate an error the fast parser has already detected.

Rows are numbered like a spreadsheet: the header is row 1, the first record row 2.
"""

from __future__ import annotations

import bz2
import csv
import functools
import gzip
import io
import lzma
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from engine.errors import DataError
from engine.schema import ColumnInfo, Role, Schema, SchemaOverrides

# Names (lower-cased) taken as the label when their column has few values, in order of preference.
LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly", "is_fraud", "isfraud", "fraud", "is_outlier",
               "outlier", "target", "class", "ground_truth", "groundtruth", "y")
# Name tokens that make a column look like a target (e.g. 'heartbeat_class', 'fraud_flag').
TARGET_TOKENS = frozenset({"label", "labels", "class", "target", "fraud", "anomaly", "anomalous",
                           "outlier", "attack", "groundtruth"})
# Name tokens that make a column look like a record key (e.g. 'BELNR', 'customer_id').
ID_TOKENS = frozenset({"id", "nr", "no", "num", "number", "key", "uuid", "guid", "belnr", "docnum", "index"})
MAX_LABEL_VALUES = 20  # "few values": more than this is not a class label
MIN_ID_ROWS = 20  # below this, "unique in every row" says nothing about a column
NUMERIC_SHARE = 0.9  # a text column whose values are at least this share numbers is numeric
HUGE = 1e100  # magnitudes beyond this are sentinels or corruption, not measurements
MAX_LISTED = 5  # rows/values quoted in a message
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
               "<NA>", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null", "None"]
TRUE_VALUES = {"true", "True", "TRUE"}
FALSE_VALUES = {"false", "False", "FALSE"}
DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%m/%d/%Y", "%d/%m/%Y",
                "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S",
                "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%d-%m-%Y", "%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M",
                "%Y%m%dT%H%M%S", "%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%d.%m.%y", "%m/%d/%y", "%d/%m/%y")

_PLAIN_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_SPECIAL_NUMBER = r"[+-]?(?:[Ii]nf|INF|[Ii]nfinity|INFINITY|[Nn]a[Nn]|NAN)"
NUMBER_RE = rf"^(?:{_PLAIN_NUMBER}|{_SPECIAL_NUMBER})$"
THOUSANDS_COMMA_RE = r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$"  # 1,234,567.89
DECIMAL_COMMA_RE = r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$"  # 1.234.567,89
EVIDENCE_THOUSANDS_RE = r"^[+-]?\d{1,3}(?:,\d{3})+\.\d+$|^[+-]?\d{1,3}(?:,\d{3}){2,}$"
EVIDENCE_DECIMAL_RE = r"^[+-]?\d+,(?:\d{1,2}|\d{4,})$|^[+-]?\d{1,3}(?:\.\d{3})+,\d+$|^[+-]?\d{1,3}(?:\.\d{3}){2,}$"
AMBIGUOUS_SEPARATOR_RE = r"^[+-]?\d{1,3},\d{3}$"  # 1,234: one thousand or one point two?

_MAGIC = ((b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"GIF8", "a GIF image"), (b"\xd0\xcf\x11\xe0", "an old-style Office file (.xls/.doc)"),
          (b"SQLite format 3\x00", "an SQLite database"), (b"PAR1", "a Parquet file"),
          (b"\x7fELF", "a program (ELF)"), (b"MZ", "a Windows program"), (b"7z\xbc\xaf", "a 7-Zip archive"),
          (b"Rar!", "a RAR archive"), (b"\x80\x04", "a Python pickle"), (b"\x80\x05", "a Python pickle"))


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

    def row_number(self, index: int) -> int:
        """The file row (header = row 1) of the record at ``index`` (0-based position in ``frame``)."""
        return int(self.record_rows[index]) if self.record_rows is not None else int(index) + 2


# --------------------------------------------------------------------------------------------- bytes

def _open_binary(path: Path):
    return open(path, "rb")  # noqa: SIM115 - the caller closes it; kept apart so tests can simulate faults


def _check_path(path: Path, name: str) -> None:
    if not os.path.lexists(path):
        raise DataError("file not found", file=name)
    if path.is_dir():
        raise DataError("is a folder, not a CSV file", file=name)
    if not path.exists():
        raise DataError("file not found (broken link)", file=name)


def _raw_bytes(path: Path, name: str) -> bytes:
    _check_path(path, name)
    try:
        with _open_binary(path) as f:
            return f.read()
    except PermissionError:
        raise DataError("permission denied: the file cannot be read", file=name) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a CSV file", file=name) from None
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror or exc})", file=name) from None


def _compression_of(path: Path, head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    suffix = path.suffix.lower()
    return {".gz": "gzip", ".zip": "zip", ".bz2": "bz2", ".xz": "xz"}.get(suffix)


def _zip_member(archive: zipfile.ZipFile, name: str) -> str:
    members = [i.filename for i in archive.infolist()
               if not i.is_dir() and not i.filename.startswith("__MACOSX/")
               and not os.path.basename(i.filename).startswith(".")]
    if any(m.startswith("xl/") for m in members):
        raise DataError("is an Excel workbook (.xlsx), not a CSV file: save it as CSV first", file=name)
    if not members:
        raise DataError("the zip archive holds no file", file=name)
    csvs = [m for m in members if m.lower().endswith((".csv", ".tsv", ".txt"))]
    if len(members) == 1:
        return members[0]
    if len(csvs) == 1:
        return csvs[0]
    raise DataError(f"the zip archive holds {len(members)} files ({', '.join(members[:MAX_LISTED])}); "
                    "expected exactly one CSV file", file=name)


def _decompress(raw: bytes, compression: str | None, name: str) -> bytes:
    if compression is None:
        return raw
    try:
        if compression == "gzip":
            return gzip.decompress(raw)
        if compression == "bz2":
            return bz2.decompress(raw)
        if compression == "xz":
            return lzma.decompress(raw)
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return archive.read(_zip_member(archive, name))
    except DataError:
        raise
    except EOFError:
        raise DataError(f"the {compression} file is truncated (it ends before the end of its compressed data)",
                        file=name) from None
    except (OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, ValueError) as exc:
        raise DataError(f"the {compression} file is damaged ({exc})", file=name) from None


_NON_SPACE = re.compile(rb"\S")


def _has_content(data: bytes, start: int = 0) -> bool:
    return _NON_SPACE.search(data, start) is not None  # unlike strip(), copies nothing


def _row_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_text(data: bytes, name: str) -> None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DataError(f"is {what}, not a CSV text file", file=name)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError("is not a text file: it contains binary data (a NUL byte)",
                        file=name, row=_row_of_offset(data, nul))
    sample = np.frombuffer(data[:65536], dtype=np.uint8)
    control = (sample < 32) & ~np.isin(sample, (9, 10, 12, 13))
    if control.mean() > 0.01:
        first = int(np.flatnonzero(control)[0])
        raise DataError("is not a text file: it contains binary data (control characters)",
                        file=name, row=_row_of_offset(data, first))


def _to_utf8(data: bytes, name: str) -> tuple[bytes, str, list[str]]:
    """The file's bytes as UTF-8 without a BOM, the encoding found, and notes about it."""
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16", []
        except UnicodeDecodeError as exc:
            raise DataError(f"starts like UTF-16 text but is not valid UTF-16 ({exc.reason})", file=name) from None
    else:
        encoding = "utf-8"
    _check_text(data, name)
    try:
        data.decode("utf-8")
        return data, encoding, []
    except UnicodeDecodeError as exc:
        bad_row = _row_of_offset(data, exc.start)
    try:
        text, encoding = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined: latin-1 maps every byte
        text, encoding = data.decode("latin-1"), "latin-1"
    notes = []
    if re.search(rb"[\xc2-\xf4][\x80-\xbf]", data):
        notes.append(f"the file mixes encodings: not valid UTF-8 (first bad byte on row {bad_row}) but it "
                     f"also contains UTF-8 text; read as {encoding}, so some accented characters may be wrong")
    else:
        notes.append(f"not UTF-8 (first non-UTF-8 byte on row {bad_row}): read as {encoding}")
    return text.encode("utf-8"), encoding, notes


# ------------------------------------------------------------------------------------------ dialect

def _head(data: bytes, min_lines: int = 50, min_bytes: int = 65536, max_bytes: int = 16 << 20) -> bytes:
    end, pos = min(len(data), min_bytes), 0
    for _ in range(min_lines):
        pos = data.find(b"\n", pos, max_bytes)
        if pos < 0:
            break
        pos += 1
    return data[:max(end, pos)] if pos > 0 else data[:max_bytes]


def _sniff_delimiter(sample: str, complete: bool) -> str:
    best, best_score = ",", (0.0, 1)
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if not complete and len(rows) > 1:
            rows = rows[:-1]  # the sample may cut the last record
        if not rows or len(rows[0]) < 2:
            continue
        n = len(rows[0])
        consistency = sum(len(r) == n for r in rows) / len(rows)
        score = (consistency, n)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _header(data: bytes, delimiter: str, name: str) -> tuple[list[str], int, list[str]]:
    """Column names, the byte offset where the data rows start, and notes about the header."""
    head = _head(data, min_lines=2)
    reader = csv.reader(io.StringIO(head.decode("utf-8", errors="replace"), newline=""), delimiter=delimiter,
                        skipinitialspace=True)  # ' "id" ' is the name id
    try:
        raw_names = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise DataError(f"cannot read the header row ({exc})", file=name, row=1) from None
    lines = reader.line_num
    end = 0
    for _ in range(lines):
        nl = data.find(b"\n", end)
        end = len(data) if nl < 0 else nl + 1
    notes, names, seen = [], [], {}
    for i, raw in enumerate(raw_names):
        n = raw.strip()
        if not n:
            n = f"unnamed_{i + 1}"
            notes.append(f"column {i + 1} has no name in the header: called '{n}'")
        if n in seen:
            raise DataError(f"duplicate column name: columns {seen[n] + 1} and {i + 1} are both called '{n}'; "
                            "column names must be unique", file=name, row=1, column=n)
        seen[n] = i
        names.append(n)
    return names, end, notes


def _line_starts(arr: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.flatnonzero(arr == 10) + 1))


def _has_odd_quote_lines(data: bytes) -> bool:
    """True when some line holds an odd number of quotes: a quoted value spans lines, or a quote is
    never closed. pyarrow would silently swallow the rest of the file into one value in that case."""
    arr = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(arr == 34)
    if quotes.size == 0:
        return False
    line = np.searchsorted(np.flatnonzero(arr == 10), quotes)
    return bool((np.bincount(line) % 2).any())


def _locate_bad_rows(data: bytes, names: list[str], delimiter: str, name: str, strict: bool) -> None:
    """Python pass over the text to find where the CSV structure breaks; raises DataError there.
    Used only once the fast parser has found something wrong (or quotes that span lines)."""
    text = data.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
    expected, bad, start = len(names), [], 1
    try:
        next(reader)  # header
        start = reader.line_num + 1
        for row in reader:
            if row and len(row) != expected:
                bad.append((start, len(row), reader.line_num > start))
            start = reader.line_num + 1
    except csv.Error as exc:
        if "end of data" in str(exc) or "EOF" in str(exc):
            raise DataError("unterminated quote: a quoted value starts on this row and is never closed",
                            file=name, row=start) from None
        raise DataError(f"malformed quoting ({exc})", file=name, row=start) from None
    if bad:
        row, found, spans = bad[0]
        more = (f"; {len(bad)} rows like this: rows {', '.join(str(b[0]) for b in bad[:MAX_LISTED])}"
                + (", ..." if len(bad) > MAX_LISTED else "")) if len(bad) > 1 else ""
        hint = " (a quote opened on this row may not be closed)" if spans else ""
        raise DataError(f"has {found} field{'s' if found != 1 else ''}, expected {expected} as in the header "
                        f"(delimiter: {DELIMITER_NAMES.get(delimiter, delimiter)}){hint}{more}",
                        file=name, row=row)


def _record_rows(data: bytes, n_records: int, header_lines: int, multiline: bool) -> np.ndarray | None:
    """File rows of the records when blank lines make them differ from index + 2."""
    if multiline or n_records == 0:
        return None
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)  # count() is fast, 'in' is not
    if lines == header_lines + n_records:
        return None  # no blank line: record i is on row i + 2
    arr = np.frombuffer(data, dtype=np.uint8)
    starts = _line_starts(arr)
    ends = np.concatenate((starts[1:] - 1, [len(arr)]))
    length = ends - starts
    # a line holding only '\r' is blank too
    cr_only = (length == 1) & (arr[np.minimum(starts, len(arr) - 1)] == 13)
    content = np.flatnonzero((length > 0) & ~cr_only)
    content = content[content >= header_lines]
    if len(content) != n_records or (len(content) and content[-1] == header_lines + n_records - 1):
        return None
    return content + 1


# ------------------------------------------------------------------------------------------ columns

def _try_cast(arr: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | None:
    try:
        if len(arr) > 4096:  # a failing cast of a whole column is slow: try its head first
            pc.cast(arr.slice(0, 4096), target)
        return pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _normalise_number_text(arr: pa.ChunkedArray, style: str) -> pa.ChunkedArray:
    s = pc.utf8_trim_whitespace(arr)
    if style == "thousands_comma":
        s = pc.replace_substring(s, ",", "")
    elif style == "decimal_comma":
        s = pc.replace_substring(pc.replace_substring(s, ".", ""), ",", ".")
    return s


def _numbers(arr: pa.ChunkedArray, style: str = "plain") -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """Floats from text in the given style, and a mask of non-missing values that are not numbers."""
    if style == "plain":
        fast = _try_cast(arr, pa.float64())
        if fast is not None:
            return fast, None
    valid_re = {"plain": NUMBER_RE, "thousands_comma": THOUSANDS_COMMA_RE,
                "decimal_comma": DECIMAL_COMMA_RE}[style]
    trimmed = pc.utf8_trim_whitespace(arr)
    valid = pc.match_substring_regex(trimmed, valid_re)
    blank = pc.equal(trimmed, "")
    normal = _normalise_number_text(arr, style)
    values = pc.cast(pc.if_else(valid, normal, pa.scalar(None, pa.string())), pa.float64())
    bad = pc.and_(pc.invert(valid), pc.invert(blank))
    return values, pc.fill_null(bad, False)


def _number_style(counts: pa.StructArray) -> tuple[str | None, float, str | None]:
    """Pick a number style for a text column from its value counts: (style, share of non-missing rows
    it parses, a note on ambiguity)."""
    values = pc.utf8_trim_whitespace(counts.field("values"))
    n = pc.cast(counts.field("counts"), pa.int64())
    total = pc.sum(n).as_py() or 0
    if total == 0:
        return None, 0.0, None

    def rows(pattern: str) -> int:
        return pc.sum(pc.if_else(pc.match_substring_regex(values, pattern), n, 0)).as_py() or 0

    plain = rows(NUMBER_RE)
    ev_thousands, ev_decimal = rows(EVIDENCE_THOUSANDS_RE) > 0, rows(EVIDENCE_DECIMAL_RE) > 0
    if ev_thousands and not ev_decimal:
        return "thousands_comma", rows(THOUSANDS_COMMA_RE) / total, None
    if ev_decimal and not ev_thousands:
        return "decimal_comma", rows(DECIMAL_COMMA_RE) / total, None
    note = None
    if ev_thousands and ev_decimal:
        note = "numbers written both with decimal commas and with thousands commas"
    elif rows(AMBIGUOUS_SEPARATOR_RE) > 0:
        note = "numbers like '1,234' could mean 1234 or 1.234"
    return "plain", plain / total, note


def _date_plan(arr: pa.ChunkedArray) -> tuple[str | None, str | None]:
    """The date plan ('timestamp', 'timestamp:UTC' for ISO 8601, or 'datetime:<format>') that reads most of
    a sample of the column's distinct values, if it reads at least NUMERIC_SHARE of them; and a note
    when day and month could be swapped."""
    sample = pc.utf8_trim_whitespace(pc.unique(pc.drop_null(arr.slice(0, 20_000)))[:500])
    if len(sample) == 0 or not pc.any(pc.match_substring_regex(sample, r"^\d")).as_py():
        return None, None
    shares: dict[str, float] = {}
    for unit, plan in ((pa.timestamp("us"), "timestamp"), (pa.timestamp("us", tz="UTC"), "timestamp:UTC")):
        shares[plan] = 1 - _iso_or_null(sample, unit).null_count / len(sample)
    for fmt in DATE_FORMATS:
        parsed = pc.strptime(sample, format=fmt, unit="s", error_is_null=True)
        shares[f"datetime:{fmt}"] = 1 - parsed.null_count / len(sample)
    best = max(shares, key=lambda p: shares[p])  # the first listed wins a tie
    if shares[best] < NUMERIC_SHARE:
        return None, None
    fmt = best.partition(":")[2]
    swapped = "datetime:" + fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    note = None
    if best.startswith("datetime:") and swapped != best and shares.get(swapped, 0) == shares[best]:
        note = f"dates like {sample[0].as_py()!r} could be month/day or day/month: read as {fmt}"
    return best, note


def _convert(arr: pa.ChunkedArray, plan: str) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """Apply a conversion plan to a text column: the values and a mask of values that did not convert."""
    kind, _, arg = plan.partition(":")
    if kind == "string":
        return arr, None
    if kind == "empty":  # all missing where planned; any values that turn up later are read as numbers
        return _numbers(arr)
    if kind == "int":
        fast = _try_cast(arr, pa.int64())
        if fast is not None:
            return fast, None
        return _numbers(arr)
    if kind == "float":
        return _numbers(arr, arg or "plain")
    if kind == "bool":
        trimmed = pc.utf8_trim_whitespace(arr)
        is_true = pc.is_in(trimmed, value_set=pa.array(sorted(TRUE_VALUES)))
        is_false = pc.is_in(trimmed, value_set=pa.array(sorted(FALSE_VALUES)))
        known = pc.or_(is_true, is_false)
        values = pc.if_else(known, is_true, pa.scalar(None, pa.bool_()))
        return values, pc.fill_null(pc.and_(pc.invert(known), pc.is_valid(arr)), False)
    if kind == "timestamp":
        unit = pa.timestamp("us", tz=arg or None)
        arr = pc.utf8_trim_whitespace(arr)  # ' 2024-01-05' is a date too
        fast = _try_cast(arr, unit)
        if fast is not None:
            return fast, None
        values = pa.chunked_array([_iso_or_null(c, unit) for c in arr.chunks], unit)
        return values, pc.fill_null(pc.and_(pc.is_null(values), pc.is_valid(arr)), False)
    if kind == "datetime":
        values = pa.chunked_array([pc.strptime(pc.utf8_trim_whitespace(c), format=arg, unit="s", error_is_null=True)
                                   for c in arr.chunks], pa.timestamp("s"))
        return values, pc.fill_null(pc.and_(pc.is_null(values), pc.is_valid(arr)), False)
    return arr, None


def _iso_or_null(chunk: pa.Array, unit: pa.DataType) -> pa.Array:
    zone = r"(?:Z|[+-]\d{2}:?\d{2})" if unit.tz else ""
    iso = rf"^\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?{zone})?$"
    ok = pc.match_substring_regex(chunk, iso)
    try:
        return pc.cast(pc.if_else(ok, chunk, pa.scalar(None, pa.string())), unit)
    except pa.ArrowInvalid:  # e.g. 2024-13-45: matches the pattern, is no date
        return pa.nulls(len(chunk), unit)


def _plan_column(arr: pa.ChunkedArray) -> tuple[str, list[str], pa.ChunkedArray | None]:
    """Decide how a column read as text is converted; notes on ambiguities found; the converted
    values when deciding needed them anyway."""
    if arr.null_count == len(arr):
        return "empty", [], None
    for plan, target in (("int", pa.int64()), ("float", pa.float64())):
        values = _try_cast(arr, target)
        if values is not None:
            if plan == "int" and pc.any(pc.match_substring_regex(arr, r"^\s*[+-]?0\d")).as_py():
                return "string", [], None  # '0042': an account or cost-centre code, not the number 42
            return plan, [], values
    plan, notes = _plan_text_column(arr)
    return plan, notes, None


def _plan_text_column(arr: pa.ChunkedArray) -> tuple[str, list[str]]:
    counts = pc.value_counts(arr)
    distinct = pc.drop_null(counts.field("values"))
    if len(distinct) <= 3 and set(pc.utf8_trim_whitespace(distinct).to_pylist()) <= TRUE_VALUES | FALSE_VALUES:
        return "bool", []
    date_plan, note = _date_plan(arr)
    if date_plan is not None:
        _, bad = _convert(arr, date_plan)
        if bad is None or pc.sum(bad).as_py() <= (1 - NUMERIC_SHARE) * (len(arr) - arr.null_count):
            return date_plan, [note] if note else []
    style, share, note = _number_style(counts)
    if style is not None and share >= NUMERIC_SHARE:
        return ("float" if style == "plain" else f"float:{style}"), [note] if note else []
    return "string", [note] if note else []


def _describe_bad(column: str, arr: pa.ChunkedArray, bad: pa.ChunkedArray, what: tuple[str, str],
                  row_of) -> str:
    idx = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
    shown = [int(i) for i in idx[:MAX_LISTED]]
    examples = sorted({str(arr[i].as_py()) for i in shown})
    rows = ", ".join(str(row_of(i)) for i in shown) + (", ..." if len(idx) > MAX_LISTED else "")
    return (f"column '{column}': {len(idx)} value{'s' if len(idx) != 1 else ''} {what[len(idx) != 1]} "
            f"(row{'s' if len(idx) != 1 else ''} {rows}: {', '.join(repr(e) for e in examples)}); "
            "treated as missing")


_PLAN_WHAT = {"int": ("is not a number", "are not numbers"), "float": ("is not a number", "are not numbers"),
              "empty": ("is not a number", "are not numbers"), "bool": ("is not true/false", "are not true/false"),
              "timestamp": ("is not a date", "are not dates"), "datetime": ("is not a date", "are not dates")}


def _apply_plan(table: pa.Table, plan: dict[str, str] | None, row_of=None) -> tuple[pa.Table, dict[str, str], list[str]]:
    """Convert the text columns of ``table`` (planning each when ``plan`` is None)."""
    new_plan, notes, columns = {}, [], []
    for name, arr in zip(table.column_names, table.columns, strict=True):
        converted = None
        if plan is None:
            column_plan, column_notes, converted = _plan_column(arr)
            notes.extend(f"column '{name}': {n}" for n in column_notes)
        else:
            column_plan = plan.get(name, "string")
        values, bad = (converted, None) if converted is not None else _convert(arr, column_plan)
        if bad is not None and row_of is not None and pc.any(bad).as_py():
            what = _PLAN_WHAT.get(column_plan.partition(":")[0], ("could not be converted",) * 2)
            notes.append(_describe_bad(name, arr, bad, what, row_of))
        new_plan[name] = column_plan
        columns.append(values)
    return pa.table(columns, names=table.column_names), new_plan, notes


def _clean_values(frame: pd.DataFrame, row_of=None) -> list[str]:
    """Infinite and absurdly large numbers become missing (listed when ``row_of`` is given)."""
    floats = [c for c, t in zip(frame.columns, frame.dtypes, strict=True) if t == np.float64]
    if not floats:
        return []
    block = frame[floats].to_numpy(dtype=np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        flagged = np.isinf(block) | (np.abs(block) >= HUGE)
    notes = []
    for j in np.flatnonzero(flagged.any(axis=0)):
        column = floats[j]
        mask = flagged[:, j]
        x = frame[column].to_numpy(dtype=np.float64)
        if row_of is not None:
            idx = np.flatnonzero(mask)
            rows = ", ".join(str(row_of(i)) for i in idx[:MAX_LISTED]) + (", ..." if len(idx) > MAX_LISTED else "")
            kinds = sorted({"infinite" if np.isinf(v) else f"huge ({v:.3g})" for v in x[idx[:MAX_LISTED]]})
            notes.append(f"column '{column}': {len(idx)} value{'s are' if len(idx) != 1 else ' is'} infinite or "
                         f"beyond ±{HUGE:.0e} (row{'s' if len(idx) != 1 else ''} {rows}: {', '.join(kinds)}); "
                         "treated as missing")
        frame[column] = np.where(mask, np.nan, x)
    return notes


def _to_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    return frame


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


def read_csv(path: str | Path) -> LoadedFile:
    """Read a CSV (plain, .gz, .zip, .bz2, .xz) into a DataFrame, detecting encoding and delimiter.

    Raises DataError naming the file (and row/column) when the file cannot be used at all; smaller
    problems (text in a numeric column, infinite values...) are listed in ``problems`` and the values
    concerned are treated as missing.
    """
    try:
        return _read_csv(str(path), Path(path))
    except MemoryError:
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        raise DataError(f"too large to load into memory ({size / 1e9:.1f} GB on disk); score it in chunks "
                        "(the score command streams large files)", file=str(path)) from None


def _read_csv(name: str, path: Path) -> LoadedFile:
    raw = _raw_bytes(path, name)
    compression = _compression_of(path, raw[:8])
    data = _decompress(raw, compression, name)
    del raw
    if not _has_content(data):
        raise DataError("the file is empty", file=name)
    data, encoding, problems = _to_utf8(data, name)
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
    if n_invalid:
        _locate_bad_rows(data, names, delimiter, name, strict=False)
        raise DataError(f"{n_invalid} rows do not have {len(names)} fields as in the header", file=name)
    header_lines = data.count(b"\n", 0, header_end)
    record_rows = _record_rows(data, table.num_rows, header_lines, multiline)
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
                      record_rows=record_rows)


def _open_text_stream(path: Path, compression: str | None, name: str):
    f = _open_binary(path)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=f)
    if compression == "bz2":
        return bz2.BZ2File(f)
    if compression == "xz":
        return lzma.LZMAFile(f)
    if compression == "zip":
        archive = zipfile.ZipFile(f)
        return archive.open(_zip_member(archive, name))
    return f


def _sniff_like(path: Path, name: str) -> LoadedFile:
    """Dialect and conversion plan from the head of a file, for streaming it."""
    _check_path(path, name)
    with _open_binary(path) as f:
        compression = _compression_of(path, f.read(8))
    try:
        with _open_text_stream(path, compression, name) as stream:
            raw = stream.read(4 << 20)
    except (EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise DataError(f"the {compression or 'file'} cannot be read ({exc})", file=name) from None
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
    own = _sniff_like(path, name)  # this file's own dialect and header, whatever ``like`` says
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
                    yield _chunk_frame(table.slice(0, chunk_rows), own, start)
                    start += chunk_rows
                    rest = table.slice(chunk_rows)
                    pending, pending_rows = rest.to_batches(), rest.num_rows
            if pending_rows:
                yield _chunk_frame(pa.Table.from_batches(pending), own, start)
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


def _chunk_frame(table: pa.Table, like: LoadedFile, start: int) -> pd.DataFrame:
    table, _, _ = _apply_plan(table, like.column_plan)
    frame = _to_frame(table)
    _clean_values(frame)
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


# ------------------------------------------------------------------------------------------ schema

@functools.lru_cache(maxsize=65536)
def _tokens(name: str) -> tuple[str, ...]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return tuple(t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t)


def _looks_like_target(name: str) -> bool:
    lowered = str(name).strip().lower()
    return lowered in LABEL_NAMES or bool(TARGET_TOKENS & set(_tokens(name))) or lowered.startswith("is_fraud")


def _looks_like_id(name: str) -> bool:
    tokens = _tokens(name)
    return bool(tokens) and (tokens[-1] in ID_TOKENS or str(name).strip().lower() in ID_TOKENS)


def _py(value: Any) -> Any:
    """A JSON-friendly Python value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not np.isfinite(v) else (int(v) if v.is_integer() and abs(v) < 2**53 else v)
    return value if isinstance(value, (int, str)) else str(value)


def _kind_of_dtype(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "int" if pd.api.types.is_integer_dtype(dtype) else "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


class _LazyColumn:
    """A column fetched only when a rule needs its values (fetching costs ~50 us per column)."""

    def __init__(self, frame: pd.DataFrame, k: int):
        self.frame, self.k, self.series = frame, k, None

    def __call__(self) -> pd.Series:
        if self.series is None:
            self.series = self.frame.iloc[:, self.k]
        return self.series


def _default_normal_value(labels: pd.Series) -> str:
    values = labels.dropna()
    if values.empty:
        return "0"
    as_str = values.astype(str).str.strip().str.lower()
    zero = as_str.isin(["0", "0.0", "false"])
    if set(as_str.unique()) <= {"0", "1", "0.0", "1.0", "true", "false"}:
        return str(values[zero].iloc[0]) if zero.any() else ("False" if as_str.isin(["true"]).all() else "0")
    return str(values.astype(str).value_counts().index[0])


def _distinct_counts(block: np.ndarray) -> np.ndarray:
    """Distinct non-NaN values per column of a 2-D float array, by sorting (no per-column loop)."""
    ordered = np.sort(block, axis=0)  # NaN sorts last
    valid = ~np.isnan(ordered)
    return valid[:1].sum(axis=0) + (valid[1:] & (ordered[1:] != ordered[:-1])).sum(axis=0)


def infer_schema(frame: pd.DataFrame, path: str | None = None) -> Schema:
    """Propose a role for every column, with the reason and statistics, and the label column.

    Column statistics are computed on whole blocks where possible: a file with 10,000 columns must
    not pay a pandas call per column."""
    n = len(frame)
    names = [str(c) for c in frame.columns]
    kinds = [_kind_of_dtype(t) for t in frame.dtypes]
    missing = frame.isna().sum().to_numpy() if n else np.zeros(len(names), dtype=int)
    n_distinct = np.zeros(len(names), dtype=np.int64)
    numeric_idx = [k for k, kind in enumerate(kinds) if kind in ("int", "float")]
    other_idx = [k for k, kind in enumerate(kinds) if kind not in ("int", "float")]
    lo = hi = integral = np.zeros(0)
    if numeric_idx and n:
        block = frame.iloc[:, numeric_idx].to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns: nanmin of nothing
            lo, hi = np.nanmin(block, axis=0), np.nanmax(block, axis=0)
            integral = np.all(np.isnan(block) | (block == np.round(block)), axis=0)
        if len(numeric_idx) > 100 and block.size <= 20_000_000:  # wide: one sort beats a call per column
            n_distinct[numeric_idx] = _distinct_counts(block)
        else:
            n_distinct[numeric_idx] = frame.iloc[:, numeric_idx].nunique(dropna=True).to_numpy()
        del block
    top: dict[int, pd.Series] = {}  # most frequent values of text columns, from the same pass as the count
    for k in other_idx:
        if n:
            counts = frame.iloc[:, k].value_counts(dropna=True)
            n_distinct[k], top[k] = len(counts), counts.head(5)
    position = {k: j for j, k in enumerate(numeric_idx)}
    detailed = len(names) <= 2000  # top values per column cost a pass each: skip them on very wide files

    # the label: exact 'label' first, then other label names, then any target-like name with few values
    candidates = [c for c, name, k in zip(frame.columns, names, range(len(names)), strict=True)
                  if _looks_like_target(name) and 0 < n_distinct[k] <= MAX_LABEL_VALUES and kinds[k] != "datetime"
                  and (name.strip().lower() != "y" or n_distinct[k] <= 2)]  # 'y' may be a coordinate
    label = None
    for preferred in LABEL_NAMES:
        label = next((c for c in candidates if str(c).strip().lower() == preferred), None)
        if label is not None:
            break
    if label is None and candidates:
        label = candidates[0]

    columns, problems = [], []
    for k, (c, name, kind) in enumerate(zip(frame.columns, names, kinds, strict=True)):
        s = _LazyColumn(frame, k)
        nonnull = n - int(missing[k])
        distinct = int(n_distinct[k])
        info: dict[str, Any] = dict(dtype=kind, missing_share=float(missing[k] / n) if n else 0.0,
                                    n_distinct=distinct)
        whole = False
        if kind in ("int", "float") and n:
            j = position[k]
            info.update(min=_py(lo[j]), max=_py(hi[j]))
            whole = bool(integral[j])
        elif kind == "datetime" and nonnull:
            info.update(min=_py(s().min()), max=_py(s().max()))
        role, reason = _role(c, name, kind, s, n, nonnull, distinct, whole, label)
        if role is Role.IGNORED and nonnull == 0:
            problems.append(f"column '{name}': every value is missing; not used")
        elif role is Role.IGNORED and distinct == 1 and c != label:
            problems.append(f"column '{name}': the same value in every row; not used")
        want_top = role in (Role.CATEGORICAL, Role.LABEL, Role.TEXT) or (
            kind in ("int", "float", "bool") and distinct <= MAX_LABEL_VALUES)
        if want_top and nonnull and (detailed or role is Role.LABEL):
            counts = top[k] if k in top else s().value_counts(dropna=True).head(5)
            info["top_values"] = [_py(v) for v in counts.index]
            info["top_counts"] = [int(v) for v in counts.to_numpy()]
        columns.append(ColumnInfo(name=name, role=role, reason=reason, **info))

    normal = None
    if label is not None:
        label_name = str(label)
        normal = _default_normal_value(frame[label])
        info = columns[list(frame.columns).index(label)]
        if info.n_distinct == 1:
            problems.append(f"label column '{label_name}' has a single value ({_py(frame[label].dropna().iloc[0])!s}): "
                            "there are no anomalies (or no normal rows) to evaluate against")
        if info.missing_share > 0:
            n_missing = int(round(info.missing_share * n))
            problems.append(f"label column '{label_name}': {n_missing} row{'s' if n_missing != 1 else ''} without "
                            "a label (counted as normal in evaluation)")
    schema = Schema(columns=columns, label_column=None if label is None else str(label), normal_value=normal,
                    problems=problems)
    if not schema.feature_columns:
        schema.problems.append(_no_feature_message(schema))
    return schema


def _role(c: Any, name: str, kind: str, s: _LazyColumn, n: int, nonnull: int, distinct: int, whole: bool,
          label: Any) -> tuple[Role, str]:
    if label is not None and c == label:
        return Role.LABEL, f"named like a label, with {distinct} distinct value{'s' if distinct != 1 else ''}"
    if label is not None and _looks_like_target(name):
        return Role.IGNORED, (f"looks like a target, like the label '{label}': used as a feature it would "
                              "leak the answer")
    if nonnull == 0:
        return Role.IGNORED, "every value is missing"
    if distinct == 1:
        value = _py(s().dropna().iloc[0])
        return Role.IGNORED, f"the same value ({value}) in every {'non-missing ' if nonnull < n else ''}row"
    unique = distinct == nonnull == n
    if kind in ("int", "float"):
        if whole and unique and (n >= MIN_ID_ROWS or _looks_like_id(name)):
            return Role.IDENTIFIER, "whole numbers, unique in every row: a record number, not a measurement"
        if whole and _looks_like_id(name) and distinct > MAX_LABEL_VALUES:
            if distinct >= 0.5 * nonnull:
                return Role.IDENTIFIER, f"named like a key, {distinct / nonnull:.0%} distinct per row"
            return Role.CATEGORICAL, f"whole numbers named like a key: codes ({distinct} distinct)"
        if whole and distinct <= 10:
            return Role.NUMERIC, (f"whole numbers with only {distinct} distinct values: kept numeric "
                                  "(set to categorical if they are codes)")
        return Role.NUMERIC, "numbers" if kind == "float" else "whole numbers"
    if kind == "datetime":
        return Role.DATETIME, "dates/times"
    if kind == "bool":
        return Role.CATEGORICAL, "true/false values"
    # text: prose first (unique sentences are not identifiers), then keys, then categories
    ratio = distinct / max(nonnull, 1)
    if ratio > 0.5:
        texts = s().dropna().astype(str)
        length, spaced = texts.str.len().mean(), texts.str.contains(" ").mean()
        if (length > 20 and spaced > 0.5) or spaced > 0.9:
            return Role.TEXT, f"free text ({distinct} distinct values, {length:.0f} characters on average)"
    if unique and (n >= MIN_ID_ROWS or _looks_like_id(name)):
        return Role.IDENTIFIER, "text, unique in every row: an identifier"
    if ratio > 0.5:
        if ratio >= 0.95 and nonnull >= MIN_ID_ROWS:
            return Role.IDENTIFIER, f"text, nearly unique per row ({ratio:.0%} distinct): an identifier"
        return Role.TEXT, f"too many distinct values ({ratio:.0%} of rows) for a category"
    return Role.CATEGORICAL, f"text with {distinct} distinct values"


def _no_feature_message(schema: Schema) -> str:
    roles = ", ".join(f"'{c.name}' {c.role.value}" for c in schema.columns[:10])
    more = ", ..." if len(schema.columns) > 10 else ""
    return (f"no usable feature column: every column is a label, identifier, free text, constant or empty "
            f"({roles}{more}); set a column's role to numeric or categorical to train")


def validate_for_training(frame: pd.DataFrame, schema: Schema, path: str | None = None) -> None:
    """Raise DataError when the data cannot train a detector: no feature column, or fewer than 2 rows."""
    if not schema.feature_columns:
        raise DataError(_no_feature_message(schema), file=path)
    missing = [c for c in schema.feature_columns if c not in frame.columns]
    if missing:
        raise DataError(f"feature column{'s' if len(missing) > 1 else ''} missing from the data: "
                        f"{', '.join(missing)}", file=path, column=missing[0])
    if len(frame) < 2:
        raise DataError(f"only {len(frame)} data row{'s' if len(frame) != 1 else ''}: at least 2 are needed to train",
                        file=path)
    usable = frame[schema.feature_columns].notna().any(axis=0)
    if not usable.any():
        raise DataError("every feature column is empty", file=path)


def load(path: str | Path, overrides: SchemaOverrides | None = None) -> tuple[LoadedFile, Schema]:
    """Read a CSV and infer its schema, then apply the user's overrides."""
    loaded = read_csv(path)
    schema = infer_schema(loaded.frame, path=loaded.path)
    if overrides is not None:
        schema = overrides.apply(schema)
    return loaded, schema


def _normal_set(schema: Schema) -> set[str]:
    normal = str(schema.normal_value).strip() if schema.normal_value is not None else "0"
    normal_set = {normal, normal.lower()}
    if normal.lower() in ("0", "0.0", "false"):
        normal_set |= {"0", "0.0", "false", "False", "FALSE"}
    elif normal.lower() in ("1", "1.0", "true"):
        normal_set |= {"1", "1.0", "true", "True", "TRUE"}
    return normal_set


def label_values(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """The label of each row as a string (e.g. 'regular', 'global', 'local'), None where missing."""
    if not schema.label_column or schema.label_column not in frame.columns:
        raise DataError(f"no label column '{schema.label_column}' in the data", column=schema.label_column)
    s = frame[schema.label_column]
    as_str = s.astype(str).str.strip().to_numpy(dtype=object)
    as_str[s.isna().to_numpy()] = None
    return as_str


def label_vector(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Ground truth as a boolean array (True = anomaly) from the schema's label column; rows without a
    label count as normal."""
    if not schema.label_column or schema.label_column not in frame.columns:
        raise DataError(f"no label column '{schema.label_column}' in the data", column=schema.label_column)
    s = frame[schema.label_column]
    values = s.astype(str).str.strip()
    return ~(values.isin(_normal_set(schema)).to_numpy() | s.isna().to_numpy())
