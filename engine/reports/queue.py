"""The review queue as a table, and its export to CSV and XLSX.

Columns: key, severity, score, flagged, verdict, note, reason, reviewer, time, the top contributing
features with their shares (feature_1, share_1, ...), then the original columns of the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError
from engine.reports.safety import atomic_output, is_formula_like, neutralise_frame
from engine.scoring import top_features

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


def default_keys(frame: pd.DataFrame, schema: Any | None = None) -> list[str]:
    """Record keys as the verdict store makes them (engine.feedback.record_keys); without a schema, the
    1-based row number."""
    from engine.feedback import record_keys

    if schema is None:
        return [str(i + 1) for i in range(len(frame))]
    return [str(k) for k in record_keys(frame, schema)]


def queue_table(frame: pd.DataFrame, schema: Any, score_result: Any, keys: Sequence[Any] | None = None,
                verdicts: Mapping[Any, Any] | None = None, threshold: float | None = None,
                top_k_features: int = 3, sort: bool = True) -> pd.DataFrame:
    """The review queue as one DataFrame (highest score first when ``sort``)."""
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
    with atomic_output(path) as tmp:
        if fmt == "csv":
            # RFC 4180 line ends: a field holding a lone CR or LF is then quoted, so it stays one cell
            neutralise_frame(table).to_csv(tmp, index=False, lineterminator="\r\n", encoding="utf-8")
        else:
            _write_xlsx(tmp, table, progress, sheet_name)
    if progress:
        progress(1.0, f"wrote {path.name}")
    return path


def _column_width(name: str, values: pd.Series) -> float:
    sample = values.iloc[:500]
    longest = max([len(str(name))] + [len(str(v)) for v in sample if v is not None])
    return float(min(max(longest + 2, 8), 50))


def _write_xlsx(path: Path, table: pd.DataFrame, progress: ProgressCallback | None, sheet_name: str) -> None:
    import xlsxwriter

    n_rows, n_cols = table.shape
    if n_rows > XLSX_MAX_ROWS:
        raise AnomalyDeskError(f"{n_rows:,} rows do not fit in an Excel sheet (at most {XLSX_MAX_ROWS:,}); "
                               "export as CSV instead")
    # Strings are never turned into formulas, URLs or numbers: every text cell stays text.
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False, "nan_inf_to_errors": True})
    try:
        sheet = workbook.add_worksheet(sheet_name)
        header = workbook.add_format({"bold": True, "bg_color": "#DDE3EA", "border": 1, "text_wrap": False})
        quoted = workbook.add_format({"quote_prefix": True})
        share_fmt = workbook.add_format({"num_format": "0.0%"})
        score_fmt = workbook.add_format({"num_format": "0.0000"})
        columns = list(table.columns)
        col_formats: dict[int, Any] = {}
        for i, name in enumerate(columns):
            width = _column_width(name, table[name])
            fmt = None
            if str(name).startswith("share_"):
                fmt = share_fmt
            elif name == "score":
                fmt = score_fmt
            col_formats[i] = fmt
            sheet.set_column(i, i, width, fmt)
        for i, name in enumerate(columns):
            sheet.write_string(0, i, str(name), header)
        values = [table[c].to_numpy(dtype=object) for c in columns]
        step = max(n_rows // 20, 1)
        for r in range(n_rows):
            for c in range(n_cols):
                _write_cell(sheet, r + 1, c, values[c][r], quoted, col_formats[c])
            if progress and r % step == 0:
                progress(0.95 * r / max(n_rows, 1), f"writing row {r + 1:,} of {n_rows:,}")
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
    finally:
        workbook.close()


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
    elif isinstance(value, str):
        if is_formula_like(value):
            sheet.write_string(row, col, value, quoted)
        else:
            sheet.write_string(row, col, value)
    else:
        sheet.write_string(row, col, str(value))
