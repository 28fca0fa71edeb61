"""Stable record keys: one per row, from the identifier column or the row's content, so verdicts
find their records again when the file is reopened, sorted or re-exported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from engine.schema import Role, Schema

if TYPE_CHECKING:  # pandas is imported where used: a process that only stores verdicts starts fast
    import pandas as pd

_HASH_KEY_PREFIX = "#"  # content keys look like "#<row position>:<16 hex digits>"


def _normalised_column(s: pd.Series) -> pd.Series:
    """A column in a form that survives a re-export: numbers rounded to 9 significant digits
    (so 1, 1.0 and 1.0000000001 agree), text stripped, missing as ''."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(s):
        s = s.astype("float64")
    if pd.api.types.is_numeric_dtype(s):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(x) & (x != 0)
        out = x.copy()
        mag = np.zeros_like(x)
        mag[finite] = np.floor(np.log10(np.abs(x[finite])))
        scale = np.power(10.0, 8 - mag)
        out[finite] = np.round(x[finite] * scale[finite]) / scale[finite]
        out[out == 0] = 0.0  # -0.0 and 0.0 hash alike
        return pd.Series(out)
    return s.astype("string").fillna("").str.strip().astype(object).reset_index(drop=True)


def _identifier_text(s: pd.Series) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_float_dtype(s):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.array(["" if v != v else (str(int(v)) if float(v).is_integer() else repr(v)) for v in x],
                        dtype=object)
    return s.astype("string").fillna("").str.strip().to_numpy(dtype=object)


def content_hashes(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """16-hex-digit hash of each row's content over the schema's data columns (not the label,
    not ignored columns), in column-name order, so a re-exported copy with reordered rows or
    columns hashes the same."""
    import pandas as pd

    cols = sorted(c.name for c in schema.columns
                  if c.role not in (Role.LABEL, Role.IGNORED) and c.name != schema.label_column
                  and c.name in frame.columns)
    if not cols:
        cols = sorted(str(c) for c in frame.columns if c != schema.label_column)
    parts = [_normalised_column(frame[c]) for c in cols]
    joined = pd.concat(parts, axis=1, ignore_index=True) if parts else pd.DataFrame(index=range(len(frame)))
    hashed = pd.util.hash_pandas_object(joined, index=False).to_numpy(dtype=np.uint64)
    return np.char.mod("%016x", hashed).astype(object) if len(hashed) else np.array([], dtype=object)


def record_keys(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Stable key per row (object array of str).

    With an identifier column (schema role IDENTIFIER) whose values are unique, the key is the
    identifier's value as text (``"INV-0042"``, ``"17"``). Otherwise it is ``"#<position>:<hash>"``:
    the 0-based row position plus a hash of the row's content; ``VerdictStore.attach`` re-attaches
    such keys by content when the rows were reordered (a re-exported copy)."""
    import pandas as pd

    ident = schema.identifier_column
    if ident is not None and ident in frame.columns:
        values = _identifier_text(frame[ident])
        if len(pd.unique(values)) == len(values) and all(values):
            return values.astype(object)
    hashes = content_hashes(frame, schema)
    return np.array([f"{_HASH_KEY_PREFIX}{i}:{h}" for i, h in enumerate(hashes)], dtype=object)


def _split_hash_key(key: str) -> tuple[int, str] | None:
    if not key.startswith(_HASH_KEY_PREFIX) or ":" not in key:
        return None
    pos, _, digest = key[1:].partition(":")
    if not pos.isdigit() or len(digest) != 16:
        return None
    return int(pos), digest


def default_keys(frame: pd.DataFrame, schema: Any | None = None) -> list[str]:
    """Record keys as the verdict store makes them (engine.feedback.record_keys); without a schema, the
    1-based row number."""
    if schema is None:
        return [str(i + 1) for i in range(len(frame))]
    return [str(k) for k in record_keys(frame, schema)]
