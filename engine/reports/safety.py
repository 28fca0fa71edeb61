"""Making exported files safe to open, and writing them so nothing half-written is left behind.

Spreadsheet formula injection (OWASP "CSV injection"): a text cell that begins with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return may be run as a formula by Excel/LibreOffice. Text cells
like that are prefixed with a single quote in CSV; in XLSX they are written as strings with the
quote-prefix format. Genuine numbers (a float -1.5) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    """True for a text value a spreadsheet could take for a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def neutralise_text(value: Any) -> Any:
    """``'=cmd`` for ``=cmd``; anything that is not formula-like text is returned unchanged."""
    return "'" + value if is_formula_like(value) else value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot be read as formulas; numeric columns unchanged."""
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
    return out


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and renamed onto
    ``path``, on any error it is removed, so ``path`` is either the old file or the complete new one."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        from engine.errors import DataError

        raise DataError("the folder to write into does not exist", file=str(path))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates the file private (0600); give the result the usual permissions of a new file.
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
