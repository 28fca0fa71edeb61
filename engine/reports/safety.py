"""Making exported files safe to open, and writing them so nothing half-written is left behind.

Spreadsheet formula injection (OWASP "CSV injection", the rule in engine.spreadsheet): text cells and
column names that could be run as a formula are prefixed with a single quote in CSV; in XLSX they are
written as strings with the quote-prefix format. Genuine numbers (a float -1.5) are never touched.
"""

from __future__ import annotations

import pandas as pd

from engine.atomic import atomic_output  # noqa: F401 - re-exported: exports write through it
from engine.spreadsheet import (  # noqa: F401 - re-exported: the exports' one entry point
    FORMULA_PREFIXES,
    is_formula_like,
    neutralise_text,
    restore_text,
)


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


