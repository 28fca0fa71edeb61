"""The dialect of a CSV: delimiter, header, quoting, and the file row of each record (rows are
numbered like a spreadsheet: the header is row 1, the first record row 2)."""

from __future__ import annotations

import csv
import io

import numpy as np

from engine.errors import BadRowsError, DataError
from engine.io.source import MAX_LISTED

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


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


def _scan_rows(data: bytes, names: list[str], delimiter: str, name: str,
               strict: bool) -> list[tuple[int, int, bool]]:
    """Python pass over the text: (file row, fields found, spans lines) of each record whose field count
    differs from the header's. Raises DataError where the quoting itself breaks (nothing to skip there)."""
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
    return bad


def find_bad_rows(data: bytes, names: list[str], delimiter: str, name: str,
                  strict: bool = False) -> list[tuple[int, int]]:
    """[(file row, fields found)] of the rows whose number of fields differs from the header's."""
    return [(row, found) for row, found, _ in _scan_rows(data, names, delimiter, name, strict)]


def _locate_bad_rows(data: bytes, names: list[str], delimiter: str, name: str, strict: bool) -> None:
    """Raises BadRowsError at the first row with the wrong number of fields (listing the others), or
    DataError where quoting breaks. Used only once the fast parser has found something wrong (or quotes
    that span lines)."""
    bad = _scan_rows(data, names, delimiter, name, strict)
    if bad:
        expected = len(names)
        row, found, spans = bad[0]
        more = (f"; {len(bad)} rows like this: rows {', '.join(str(b[0]) for b in bad[:MAX_LISTED])}"
                + (", ..." if len(bad) > MAX_LISTED else "")) if len(bad) > 1 else ""
        hint = " (a quote opened on this row may not be closed)" if spans else ""
        raise BadRowsError(f"has {found} field{'s' if found != 1 else ''}, expected {expected} as in the header "
                           f"(delimiter: {DELIMITER_NAMES.get(delimiter, delimiter)}){hint}{more}",
                           file=name, row=row, bad_rows=[(b[0], b[1]) for b in bad], expected=expected)


def _record_rows(data: bytes, n_records: int, header_lines: int, multiline: bool,
                 skipped: tuple[int, ...] = ()) -> np.ndarray | None:
    """File rows of the records when blank lines or ``skipped`` rows (file rows left out) make them
    differ from index + 2."""
    if multiline or n_records == 0:
        return None
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)  # count() is fast, 'in' is not
    if lines == header_lines + n_records and not skipped:
        return None  # no blank line: record i is on row i + 2
    arr = np.frombuffer(data, dtype=np.uint8)
    starts = _line_starts(arr)
    ends = np.concatenate((starts[1:] - 1, [len(arr)]))
    length = ends - starts
    # a line holding only '\r' is blank too
    cr_only = (length == 1) & (arr[np.minimum(starts, len(arr) - 1)] == 13)
    content = np.flatnonzero((length > 0) & ~cr_only)
    content = content[content >= header_lines]
    if skipped:
        content = content[~np.isin(content + 1, np.asarray(skipped, dtype=np.int64))]
    if len(content) != n_records or (len(content) and content[-1] == header_lines + n_records - 1):
        return None
    return content + 1
