"""Preprocessing: turns the schema's feature columns into a numeric matrix.

WALKING SKELETON: minimal first version; the detectors work (issue 3) replaces the internals
(robust scaling, log for amounts, missing indicators, rare-level bucketing, embeddings,
datetime expansion), keeping the interface: fit / transform / to_dict / from_dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import NotFittedError, SchemaMismatchError
from engine.schema import Role, Schema


@dataclass
class FeatureMatrix:
    values: np.ndarray  # (n_rows, n_features) float32
    feature_names: list[str]  # encoded feature names
    source_columns: list[str]  # original feature columns, in order
    source_index: np.ndarray  # (n_features,) index into source_columns for each encoded feature


class Preprocessor:
    def __init__(self, max_levels: int = 50):
        self.max_levels = max_levels

    def fit(self, frame: pd.DataFrame, schema: Schema) -> Preprocessor:
        self.columns_ = schema.feature_columns
        self.roles_ = {c: schema.column(c).role.value for c in self.columns_}
        self.numeric_stats_: dict[str, tuple[float, float]] = {}
        self.levels_: dict[str, list[str]] = {}
        for c in self.columns_:
            if self.roles_[c] == Role.NUMERIC.value:
                x = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
                med = float(np.nanmedian(x))
                iqr = float(np.nanpercentile(x, 75) - np.nanpercentile(x, 25)) or float(np.nanstd(x)) or 1.0
                self.numeric_stats_[c] = (med, iqr)
            else:
                counts = frame[c].astype(str).value_counts()
                self.levels_[c] = [str(v) for v in counts.index[: self.max_levels]]
        return self

    def transform(self, frame: pd.DataFrame) -> FeatureMatrix:
        if not hasattr(self, "columns_"):
            raise NotFittedError("Preprocessor is not fitted: call fit() first")
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise SchemaMismatchError(f"columns missing from the data: {', '.join(missing)}")
        blocks, names, index = [], [], []
        for i, c in enumerate(self.columns_):
            if self.roles_[c] == Role.NUMERIC.value:
                med, iqr = self.numeric_stats_[c]
                x = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
                blocks.append(np.nan_to_num((x - med) / iqr)[:, None])
                names.append(c)
                index.append(i)
            else:
                levels = self.levels_[c]
                codes = pd.Categorical(frame[c].astype(str), categories=levels).codes
                onehot = np.zeros((len(frame), len(levels) + 1), dtype=np.float32)
                onehot[np.arange(len(frame)), np.where(codes < 0, len(levels), codes)] = 1.0
                blocks.append(onehot)
                names.extend([f"{c}={v}" for v in levels] + [f"{c}=<other>"])
                index.extend([i] * (len(levels) + 1))
        values = np.hstack(blocks).astype(np.float32) if blocks else np.zeros((len(frame), 0), np.float32)
        return FeatureMatrix(values, names, list(self.columns_), np.asarray(index, dtype=np.int64))

    def to_dict(self) -> dict[str, Any]:
        return {"max_levels": self.max_levels, "columns": self.columns_, "roles": self.roles_,
                "numeric_stats": self.numeric_stats_, "levels": self.levels_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        p = cls(max_levels=int(d["max_levels"]))
        p.columns_ = list(d["columns"])
        p.roles_ = dict(d["roles"])
        p.numeric_stats_ = {k: (float(v[0]), float(v[1])) for k, v in d["numeric_stats"].items()}
        p.levels_ = {k: [str(x) for x in v] for k, v in d["levels"].items()}
        return p
