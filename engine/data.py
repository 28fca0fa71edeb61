"""Reading CSV files and inferring their schema.

WALKING SKELETON: minimal first version so every part of the product can be built against the
real interface; the data-layer work (issue 2) replaces the internals, keeping these signatures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.schema import ColumnInfo, Role, Schema, SchemaOverrides

LABEL_NAMES = ("label", "labels", "class", "target", "is_fraud", "fraud", "anomaly", "is_anomaly", "y", "outlier")


@dataclass
class LoadedFile:
    path: str
    frame: pd.DataFrame
    encoding: str = "utf-8"
    delimiter: str = ","
    problems: list[str] = field(default_factory=list)


def read_csv(path: str | Path) -> LoadedFile:
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path))
    try:
        frame = pd.read_csv(path, engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - any parser failure becomes a located DataError
        raise DataError(f"cannot be read as CSV ({exc})", file=str(path)) from None
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataError("the file has no data rows", file=str(path))
    return LoadedFile(path=str(path), frame=frame)


def infer_schema(frame: pd.DataFrame, *, path: str | None = None) -> Schema:
    n = len(frame)
    columns: list[ColumnInfo] = []
    label = None
    for name in frame.columns:
        s = frame[name]
        n_distinct = int(s.nunique(dropna=True))
        info = dict(dtype=str(s.dtype), missing_share=float(s.isna().mean()), n_distinct=n_distinct)
        if label is None and str(name).lower() in LABEL_NAMES and n_distinct <= 20:
            label = name
            role, reason = Role.LABEL, "named like a label with few distinct values"
        elif pd.api.types.is_numeric_dtype(s):
            if n_distinct == n and pd.api.types.is_integer_dtype(s):
                role, reason = Role.IDENTIFIER, "integer, unique per row"
            else:
                role, reason = Role.NUMERIC, "numeric values"
            info.update(min=float(s.min()), max=float(s.max()))
        elif n_distinct == n:
            role, reason = Role.IDENTIFIER, "unique per row"
        elif n_distinct <= max(50, int(0.05 * n)):
            role, reason = Role.CATEGORICAL, f"{n_distinct} distinct values"
        else:
            role, reason = Role.TEXT, "many distinct text values"
        columns.append(ColumnInfo(name=str(name), role=role, reason=reason, **info))
    normal = None
    if label is not None:
        normal = _default_normal_value(frame[label])
    return Schema(columns=columns, label_column=label, normal_value=normal)


def _default_normal_value(labels: pd.Series) -> str:
    values = labels.dropna()
    as_str = values.astype(str).str.strip().str.lower()
    if set(as_str.unique()) <= {"0", "1", "0.0", "1.0", "true", "false"}:
        return str(values[as_str.isin(["0", "0.0", "false"])].iloc[0]) if (
            as_str.isin(["0", "0.0", "false"]).any()) else "0"
    return str(values.astype(str).value_counts().index[0])


def load(path: str | Path, overrides: SchemaOverrides | None = None) -> tuple[LoadedFile, Schema]:
    loaded = read_csv(path)
    schema = infer_schema(loaded.frame, path=loaded.path)
    if overrides is not None:
        schema = overrides.apply(schema)
    return loaded, schema


def label_vector(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Ground truth as a boolean array (True = anomaly) from the schema's label column."""
    if not schema.label_column or schema.label_column not in frame.columns:
        raise DataError(f"no label column '{schema.label_column}' in the data", column=schema.label_column)
    values = frame[schema.label_column].astype(str).str.strip()
    normal = str(schema.normal_value).strip() if schema.normal_value is not None else "0"
    normal_set = {normal, normal.lower()}
    if normal.lower() in ("0", "0.0", "false"):
        normal_set |= {"0", "0.0", "false", "False", "FALSE"}
    return ~values.isin(normal_set).to_numpy()
