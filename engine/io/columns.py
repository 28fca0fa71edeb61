"""Column conversion from text with vectorised Arrow kernels: numbers (plain, thousands or decimal
commas), dates, booleans, and the per-column plan replayed on every chunk of a large file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.io.mixed import text_among_numbers
from engine.io.source import MAX_LISTED

NUMERIC_SHARE = 0.9  # a text column whose values are at least this share numbers is numeric
HUGE = 1e100  # magnitudes beyond this are sentinels or corruption, not measurements
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
            if column_plan == "string" and row_of is not None and (mixed := text_among_numbers(arr)) is not None:
                notes.append(mixed.describe(name, row_of))  # kept as text, but the analyst must hear why
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
