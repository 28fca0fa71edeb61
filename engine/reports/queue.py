"""The review queue as a table, and its export to CSV and XLSX.

Columns: key, severity, score, flagged, [rule,] verdict, note, reason, reviewer, time, the top contributing
features with their shares (feature_1, share_1, ...), then the original columns of the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError
from engine.feedback import default_keys
from engine.reports.safety import atomic_output, is_formula_like, neutralise_frame
from engine.scoring.severity import top_features

ProgressCallback = Callable[..., None]

VERDICT_FIELDS = ("verdict", "note", "reason", "reviewer", "time")
LEAD_COLUMNS = ("key", "severity", "score", "flagged", *VERDICT_FIELDS)
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit less the header row
QUEUE_FORMATS = ("csv", "xlsx")


def record_field(record: Any, name: str) -> Any:
    """A field of a verdict record, whether it is an object with attributes or a mapping."""
    if record is None:
        return None
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def verdict_text(record: Any) -> str:
    """The verdict of a record as plain lower-case text (``anomaly``, ``normal``, ``unsure``)."""
    value = record if isinstance(record, str) else record_field(record, "verdict")
    value = getattr(value, "value", value)
    return "" if value is None else str(value).strip().lower()


def _time_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc).isoformat(timespec="seconds")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def queue_table(frame: pd.DataFrame, schema: Any, score_result: Any, keys: Sequence[Any] | None = None,
                verdicts: Mapping[Any, Any] | None = None, threshold: float | None = None,
                top_k_features: int = 3, sort: bool = True, suppressed: np.ndarray | None = None,
                rule_names: np.ndarray | None = None) -> pd.DataFrame:
    """The review queue as one DataFrame (highest score first when ``sort``). Records a rule treats
    as normal (``suppressed``) are not flagged; ``rule_names`` adds a ``rule`` column naming the rule
    that matched each record ("" for none)."""
    n = len(frame)
    scores = np.asarray(score_result.scores, dtype=np.float64)
    if len(scores) != n:
        raise AnomalyDeskError(f"the scores ({len(scores)}) do not match the records ({n})")
    keys = default_keys(frame, schema) if keys is None else [str(k) for k in keys]
    table: dict[str, Any] = {
        "key": keys,
        "severity": np.round(np.asarray(score_result.severity, dtype=np.float64), 1),
        "score": scores,
        "flagged": scores >= threshold if threshold is not None else np.zeros(n, dtype=bool),
    }
    if suppressed is not None:
        table["flagged"] = table["flagged"] & ~np.asarray(suppressed, dtype=bool)
    if rule_names is not None:
        table["rule"] = np.asarray(rule_names, dtype=object)
    lookup = {str(k): v for k, v in (verdicts or {}).items()}
    per_row = [lookup.get(k) for k in keys]
    table["verdict"] = [verdict_text(r) if r is not None else "" for r in per_row]
    table["note"] = [record_field(r, "note") or "" for r in per_row]
    table["reason"] = [record_field(r, "reason") or "" for r in per_row]
    table["reviewer"] = [record_field(r, "user") or record_field(r, "reviewer") or "" for r in per_row]
    table["time"] = [_time_text(record_field(r, "time")) for r in per_row]
    names, shares = top_features(score_result.contributions, score_result.columns, top_k_features)
    for rank, (col_names, col_shares) in enumerate(zip(names, shares, strict=True), start=1):
        table[f"feature_{rank}"] = col_names
        table[f"share_{rank}"] = np.round(col_shares, 4)
    out = pd.DataFrame(table)
    originals = frame.reset_index(drop=True)
    renames = {c: f"{c} (original)" for c in originals.columns if c in out.columns}
    out = pd.concat([out, originals.rename(columns=renames)], axis=1)
    if sort:
        out = out.iloc[np.argsort(-scores, kind="stable")].reset_index(drop=True)
    return out


def export_queue(path: str | Path, format: str | None, frame: pd.DataFrame, schema: Any, score_result: Any,
                 keys: Sequence[Any] | None = None, verdicts: Mapping[Any, Any] | None = None,
                 threshold: float | None = None, top_k_features: int = 3,
                 progress: ProgressCallback | None = None) -> Path:
    """Write the review queue to ``path`` as ``csv`` or ``xlsx`` (from the suffix when ``format`` is None)."""
    table = queue_table(frame, schema, score_result, keys, verdicts, threshold, top_k_features)
    return write_table(path, table, format, progress=progress)


def write_table(path: str | Path, table: pd.DataFrame, format: str | None = None,
                progress: ProgressCallback | None = None, sheet_name: str = "Queue") -> Path:
    """Write a queue table as CSV or XLSX, atomically and with formula injection neutralised."""
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in QUEUE_FORMATS:
        raise AnomalyDeskError(f"cannot export a table as '{fmt}': choose one of {', '.join(QUEUE_FORMATS)}")
    if fmt == "xlsx":
        return write_workbook(path, [Sheet(sheet_name, table)], progress)
    with atomic_output(path) as tmp:
        # RFC 4180 line ends: a field holding a lone CR or LF is then quoted, so it stays one cell
        neutralise_frame(table).to_csv(tmp, index=False, lineterminator="\r\n", encoding="utf-8")
    if progress:
        progress(1.0, f"wrote {path.name}")
    return path


@dataclass
class Sheet:
    """One sheet of an exported workbook: a table (header row, filter, frozen panes) or, with
    ``kind="fields"``, a two-column list of labelled values (a summary) without header or filter."""

    name: str
    table: pd.DataFrame
    kind: str = "table"  # "table" | "fields"
    title: str = ""  # "fields" sheets: a large first line


def write_workbook(path: str | Path, sheets: Sequence[Sheet], progress: ProgressCallback | None = None) -> Path:
    """Write ``sheets`` into one XLSX workbook, atomically; the first sheet is the one it opens on.
    Every text cell, header included, is written as text with formula-like values quote-prefixed."""
    path = Path(path)
    for sheet in sheets:
        if sheet.kind == "table" and len(sheet.table) > XLSX_MAX_ROWS:
            raise AnomalyDeskError(f"{len(sheet.table):,} rows do not fit in an Excel sheet (at most "
                                   f"{XLSX_MAX_ROWS:,}); export as CSV instead")
    total = max(sum(len(s.table) for s in sheets), 1)
    done = 0
    with atomic_output(path) as tmp:
        import xlsxwriter

        # Strings are never turned into formulas, URLs or numbers: every text cell stays text.
        workbook = xlsxwriter.Workbook(str(tmp), {
            "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
            "strings_to_numbers": False, "nan_inf_to_errors": True})
        try:
            formats = _Formats(workbook)
            for sheet in sheets:
                def step(rows: int, _done=done, _name=sheet.name) -> None:
                    if progress:
                        progress(0.95 * (_done + rows) / total, f"writing {_name}: row {rows + 1:,}")

                if sheet.kind == "fields":
                    _write_fields(workbook.add_worksheet(sheet.name), sheet, formats)
                else:
                    _write_table_sheet(workbook, workbook.add_worksheet(sheet.name), sheet.table, formats, step)
                done += len(sheet.table)
        finally:
            workbook.close()
    if progress:
        progress(1.0, f"wrote {path.name}")
    return path


class _Formats:
    def __init__(self, workbook):
        self.header = workbook.add_format({"bold": True, "bg_color": "#DDE3EA", "border": 1, "text_wrap": False})
        self.header_quoted = workbook.add_format({"bold": True, "bg_color": "#DDE3EA", "border": 1,
                                                  "quote_prefix": True})
        self.quoted = workbook.add_format({"quote_prefix": True})
        self.share = workbook.add_format({"num_format": "0.0%"})
        self.score = workbook.add_format({"num_format": "0.0000"})
        self.time = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.label = workbook.add_format({"bold": True, "valign": "top"})
        self.label_quoted = workbook.add_format({"bold": True, "valign": "top", "quote_prefix": True})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.wrap_quoted = workbook.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
        self.title = workbook.add_format({"bold": True, "font_size": 16, "font_color": "#2F5D8A"})
        self.title_quoted = workbook.add_format({"bold": True, "font_size": 16, "font_color": "#2F5D8A",
                                                 "quote_prefix": True})


def _column_width(name: str, values: pd.Series) -> float:
    sample = values.iloc[:500]
    longest = max([len(str(name))] + [len(str(v)) for v in sample if v is not None])
    return float(min(max(longest + 2, 8), 50))


def as_datetime(value: Any) -> Any:
    """An ISO 8601 time (as the verdict store writes it) as a naive UTC datetime, which spreadsheets
    store as a real date cell; anything else unchanged."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4:5] == "-":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _write_table_sheet(workbook, sheet, table: pd.DataFrame, formats: _Formats,
                       step: Callable[[int], None]) -> None:
    n_rows, n_cols = table.shape
    columns = list(table.columns)
    col_formats: dict[int, Any] = {}
    for i, name in enumerate(columns):
        fmt = None
        if str(name).startswith("share_"):
            fmt = formats.share
        elif name == "score":
            fmt = formats.score
        elif name == "time":
            fmt = formats.time
        col_formats[i] = fmt
        sheet.set_column(i, i, 20.0 if name == "time" else _column_width(name, table[name]), fmt)
    for i, name in enumerate(columns):
        text = str(name)
        sheet.write_string(0, i, text, formats.header_quoted if is_formula_like(text) else formats.header)
    values = [table[c].to_numpy(dtype=object) for c in columns]
    times = [i for i, name in enumerate(columns) if name == "time"]
    every = max(n_rows // 20, 1)
    for r in range(n_rows):
        for c in range(n_cols):
            value = values[c][r]
            if c in times:
                value = as_datetime(value)
            _write_cell(sheet, r + 1, c, value, formats.quoted, col_formats[c])
        if r % every == 0:
            step(r)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(n_rows, 1), n_cols - 1)
    if "severity" in columns and n_rows:
        col = columns.index("severity")
        for threshold, colour in ((90, "#F4A6A6"), (70, "#F9CF9B"), (50, "#FBEFA5")):
            sheet.conditional_format(1, col, n_rows, col, {
                "type": "cell", "criteria": ">=", "value": threshold,
                "format": workbook.add_format({"bg_color": colour}), "stop_if_true": True})
    if "flagged" in columns and n_rows:
        col = columns.index("flagged")
        sheet.conditional_format(1, col, n_rows, col, {
            "type": "cell", "criteria": "==", "value": "TRUE",
            "format": workbook.add_format({"bold": True, "font_color": "#9C0006"})})


def _write_fields(sheet, spec: Sheet, formats: _Formats) -> None:
    """Labels in column A, values in column B (numbers stay numbers, long text wraps)."""
    sheet.set_column(0, 0, 34.0)
    sheet.set_column(1, 1, 90.0)
    row = 0
    if spec.title:
        sheet.write_string(0, 0, spec.title, formats.title_quoted if is_formula_like(spec.title) else formats.title)
        row = 2
    for label, value in spec.table.itertuples(index=False, name=None):
        label = "" if label is None else str(label)
        sheet.write_string(row, 0, label, formats.label_quoted if is_formula_like(label) else formats.label)
        value = as_datetime(value)
        if isinstance(value, str):
            sheet.write_string(row, 1, value, formats.wrap_quoted if is_formula_like(value) else formats.wrap)
        else:
            _write_cell(sheet, row, 1, value, formats.quoted, formats.time if isinstance(value, datetime) else None)
        row += 1


def _write_cell(sheet, row: int, col: int, value: Any, quoted, fmt) -> None:
    if value is None or value is pd.NA or value is pd.NaT:
        return
    if isinstance(value, (bool, np.bool_)):
        sheet.write_boolean(row, col, bool(value))
    elif isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if math.isnan(v):
            return
        sheet.write_number(row, col, v, fmt)
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, value, fmt)
    elif isinstance(value, str):
        if is_formula_like(value):
            sheet.write_string(row, col, value, quoted)
        else:
            sheet.write_string(row, col, value)
    else:
        text = str(value)
        sheet.write_string(row, col, text, quoted if is_formula_like(text) else None)
