"""Schema inference (column roles with the reason for each), validation before training, and
``load``: read plus infer in one call."""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.io.reader import LoadedFile, read_csv
from engine.schema import ColumnInfo, Role, Schema, SchemaOverrides, normal_label_set, normal_value_of

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
    values = labels.dropna().astype(str)
    return normal_value_of(list(values.value_counts().index)) or "0"


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


def load(path: str | Path, overrides: SchemaOverrides | None = None,
         skip_bad_rows: bool = False) -> tuple[LoadedFile, Schema]:
    """Read a CSV and infer its schema, then apply the user's overrides. ``skip_bad_rows``: see read_csv."""
    loaded = read_csv(path, skip_bad_rows=skip_bad_rows)
    schema = infer_schema(loaded.frame, path=loaded.path)
    if overrides is not None:
        schema = overrides.apply(schema)
    return loaded, schema


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
    return ~(values.isin(normal_label_set(schema.normal_value)).to_numpy() | s.isna().to_numpy())
