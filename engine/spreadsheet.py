"""Which text a spreadsheet could run as a formula, and how an export keeps it text: the one rule, used
by every exported cell (engine.reports.safety for queues, reports and scores; the verdict store's CSV).

Spreadsheet formula injection (OWASP "CSV injection"): a text cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return may be run as a formula by Excel/LibreOffice. Such text is written with
a single quote in front (``'=cmd``); reading our own exports back takes the quote off again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    """True for a text value a spreadsheet could take for a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def neutralise_text(value: Any) -> Any:
    """``'=cmd`` for ``=cmd``; anything that is not formula-like text is returned unchanged."""
    return "'" + value if is_formula_like(value) else value


def restore_text(value: Any) -> Any:
    """The inverse of ``neutralise_text`` for a cell read back from one of our exports."""
    if isinstance(value, str) and value.startswith("'") and value[1:2] and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names cannot be read as formulas; numeric
    columns unchanged. (A column named ``=HYPERLINK(...)`` is a header cell like any other.)"""
    out = frame.copy()
    for name in out.columns:
        s = out[name]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if pd.api.types.is_string_dtype(s) and s.dtype != object:
            first = s.str[:1]
            mask = first.isin(FORMULA_PREFIXES).fillna(False).to_numpy(dtype=bool)
            if mask.any():
                s = s.astype(object)
                s[mask] = "'" + out[name][mask].astype(str)
                out[name] = s
        else:  # object column: mixed Python values; numbers in it stay numbers
            out[name] = s.map(neutralise_text)
    if any(is_formula_like(c) for c in out.columns):
        out.columns = [neutralise_text(c) for c in out.columns]
    return out


