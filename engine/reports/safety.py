"""Making exported files safe to open, and writing them so nothing half-written is left behind.

Spreadsheet formula injection (OWASP "CSV injection"): a text cell that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return may be run as a formula by Excel/LibreOffice. Text cells
like that are prefixed with a single quote in CSV; in XLSX they are written as strings with the
quote-prefix format. Column headers are cells too (a file's column may be named ``=cmd``): they get
the same treatment. Genuine numbers (a float -1.5) are never touched.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from engine.atomic import atomic_output  # noqa: F401 - re-exported: exports write through it

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    """True for a text value a spreadsheet could take for a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def neutralise_text(value: Any) -> Any:
    """``'=cmd`` for ``=cmd``; anything that is not formula-like text is returned unchanged."""
    return "'" + value if is_formula_like(value) else value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and headers cannot be read as formulas; numeric columns
    unchanged."""
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
