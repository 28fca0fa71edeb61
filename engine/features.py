"""Preprocessing: turns the schema's feature columns into numbers a detector can learn from.

- numeric columns: log1p for heavy-tailed non-negative amounts (signed log for heavy-tailed signed
  ones), then robust scaling (median / IQR); missing values imputed with the median plus a 0/1
  indicator when the training data had missing values;
- categorical columns: integer codes over the frequent levels; levels rarer than ``min_level_count``
  (or beyond ``max_levels``) and values never seen in training share one ``<other>`` level, so a rare
  value is *one* rare event the detectors can learn about, and unseen values at scoring time are
  counted (``FeatureMatrix.unseen``) instead of failing;
- datetime columns: expanded into hour, weekday, day of month and month (numeric parts).

The ``FeatureMatrix`` keeps the numeric block and the categorical codes apart (the autoencoder
embeds codes instead of multiplying one-hot matrices); ``values`` (numeric block + one-hot
blocks, dense float32) is built on first use for detectors that want a plain matrix.
Everything is vectorised (pandas/numpy): a million rows transform in seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.errors import NotFittedError, SchemaMismatchError
from engine.schema import Role, Schema

OTHER_LEVEL = "<other>"
MAX_RARE_VALUES = 20_000  # rare values whose training counts are kept per column (beyond: counted as seen once)
MISSING_LEVEL = "<missing>"
DATETIME_PARTS = ("hour", "weekday", "day", "month")
_CLIP = 1e6  # keeps float32 finite whatever the input; far beyond any meaningful scaled value
_FORMAT_VERSION = 1


class FeatureMatrix:
    """Encoded features of a table.

    ``numeric`` (n, d_num) float32 holds scaled numeric features, datetime parts and missing
    indicators; ``codes`` (n, n_cat) int64 holds one code per categorical column, in
    ``0..len(categories[j])-1`` (the last level is ``<other>``). ``values`` is the dense matrix
    ``[numeric | one-hot(codes)]`` with names ``feature_names`` and ``source_index`` (encoded
    feature -> index into ``source_columns``).
    """

    def __init__(self, values: np.ndarray | None = None, feature_names: list[str] | None = None,
                 source_columns: list[str] | None = None, source_index: np.ndarray | None = None, *,
                 numeric: np.ndarray | None = None, numeric_names: list[str] | None = None,
                 numeric_source: np.ndarray | None = None, codes: np.ndarray | None = None,
                 categorical_source: np.ndarray | None = None, categories: list[list[str]] | None = None,
                 unseen: dict[str, int] | None = None, missing: dict[str, int] | None = None,
                 rare_nll: np.ndarray | None = None, numeric_log: np.ndarray | None = None):
        if numeric is None:
            # A plain matrix (e.g. built by a test): every column numeric.
            if values is None:
                raise ValueError("FeatureMatrix needs values or numeric/codes")
            numeric = np.asarray(values, dtype=np.float32)
            numeric_names = list(feature_names or [f"x{i}" for i in range(numeric.shape[1])])
            numeric_source = (np.asarray(source_index, dtype=np.int64) if source_index is not None
                              else np.arange(numeric.shape[1], dtype=np.int64))
            source_columns = list(source_columns or numeric_names)
        n = numeric.shape[0]
        self.numeric = np.ascontiguousarray(numeric, dtype=np.float32)
        self.numeric_names = list(numeric_names or [])
        self.numeric_source = np.asarray(numeric_source if numeric_source is not None else [], dtype=np.int64)
        self.codes = (np.zeros((n, 0), dtype=np.int64) if codes is None
                      else np.ascontiguousarray(codes, dtype=np.int64))
        self.categorical_source = np.asarray(categorical_source if categorical_source is not None else [],
                                             dtype=np.int64)
        self.categories = [list(c) for c in (categories or [])]
        self.source_columns = list(source_columns or [])
        self.unseen = dict(unseen or {})
        self.missing = dict(missing or {})
        # -log P(value | "<other>") per categorical column: how surprising the exact value is among the
        # rare ones (0 outside the "<other>" level). Detectors add it to the "<other>" level's NLL, so a
        # value seen once in training or never is rarer than one seen four times.
        self.rare_nll = (np.zeros(self.codes.shape, dtype=np.float32) if rare_nll is None
                         else np.ascontiguousarray(rare_nll, dtype=np.float32))
        # (d_num, 3) per numeric feature: log kind (0 none, 1 log1p, 2 signed log1p), center, scale, so
        # a detector that needs the unlogged values (``linear_numeric``) can undo the log transform.
        self.numeric_log = (None if numeric_log is None
                            else np.asarray(numeric_log, dtype=np.float64).reshape(self.numeric.shape[1], 3))
        self._values = None if values is None or codes is not None else self.numeric

    # -- shape of the encoding -----------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.numeric.shape[0])

    def __len__(self) -> int:
        return self.n_rows

    @property
    def cardinalities(self) -> list[int]:
        return [len(c) for c in self.categories]

    @property
    def categorical_slices(self) -> list[slice]:
        """For each categorical column, its one-hot block within ``values``."""
        out, start = [], self.numeric.shape[1]
        for k in self.cardinalities:
            out.append(slice(start, start + k))
            start += k
        return out

    @property
    def n_features(self) -> int:
        return int(self.numeric.shape[1] + sum(self.cardinalities))

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric_names)
        for j, levels in zip(self.categorical_source, self.categories, strict=True):
            col = self.source_columns[j]
            names.extend(f"{col}={lvl}" for lvl in levels)
        return names

    @property
    def source_index(self) -> np.ndarray:
        parts = [self.numeric_source]
        parts += [np.full(len(levels), j, dtype=np.int64)
                  for j, levels in zip(self.categorical_source, self.categories, strict=True)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    @property
    def values(self) -> np.ndarray:
        """Dense (n, n_features) float32: numeric block then one-hot blocks (built once, cached)."""
        if self._values is None:
            n = self.n_rows
            out = np.zeros((n, self.n_features), dtype=np.float32)
            out[:, : self.numeric.shape[1]] = self.numeric
            rows = np.arange(n)
            for j, sl in enumerate(self.categorical_slices):
                out[rows, sl.start + self.codes[:, j]] = 1.0
            self._values = out
        return self._values

    def subset(self, rows: np.ndarray) -> FeatureMatrix:
        """The same encoding restricted to ``rows`` (an index or boolean mask)."""
        fm = FeatureMatrix(numeric=self.numeric[rows], numeric_names=self.numeric_names,
                           numeric_source=self.numeric_source, codes=self.codes[rows],
                           categorical_source=self.categorical_source, categories=self.categories,
                           source_columns=self.source_columns, rare_nll=self.rare_nll[rows],
                           numeric_log=self.numeric_log)
        return fm

    def linear_numeric(self) -> np.ndarray:
        """The numeric block (float64) with the log transform undone, still centred and scaled in the
        log domain's units: ``sign(t) * expm1(|t|)`` with ``t = z * scale + center`` (exponent capped at
        80 so float32 stays finite). For detectors whose splits are drawn uniformly over a feature's
        range (isolation forest): the log squeezes exactly the right tail where outliers lie."""
        x = self.numeric.astype(np.float64)
        if self.numeric_log is None:
            return x
        for j in np.flatnonzero(self.numeric_log[:, 0] > 0):
            t = x[:, j] * self.numeric_log[j, 2] + self.numeric_log[j, 1]
            x[:, j] = np.sign(t) * np.expm1(np.minimum(np.abs(t), 80.0))
        return x

    def __repr__(self) -> str:
        return (f"FeatureMatrix(rows={self.n_rows}, numeric={self.numeric.shape[1]}, "
                f"categorical={len(self.categories)}, features={self.n_features})")


def as_float(series: pd.Series) -> np.ndarray:
    x = np.array(pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
    x[~np.isfinite(x)] = np.nan  # inf is as unusable as missing
    return x


def as_text(series: pd.Series) -> np.ndarray:
    """Categorical values as strings, stable across files (1 and 1.0 read the same)."""
    s = series
    if pd.api.types.is_float_dtype(s.dtype):
        finite = s.dropna()
        if len(finite) and np.all(np.mod(finite.to_numpy(), 1) == 0):
            s = s.astype("Int64")
    out = s.astype("string").fillna(MISSING_LEVEL).str.strip()
    return out.to_numpy(dtype=object)


def _heavy_tail(x: np.ndarray) -> bool:
    """A long right tail: the far quantile sits many spreads away from the median."""
    q25, q50, q75, q999 = np.nanpercentile(np.abs(x), [25, 50, 75, 99.9])
    spread = max(q75 - q25, 1e-12 * max(abs(q999), 1.0))
    return bool((q999 - q50) / spread > 10.0 and q999 > 0)


def _robust_center_scale(x: np.ndarray) -> tuple[float, float]:
    lo, q25, q50, q75, hi = np.nanpercentile(x, [0.5, 25, 50, 75, 99.5])
    # IQR of a standard normal reads like a z-score; but a column that is nearly constant in its middle
    # half with a long spread outside it (a rate almost always 1.0) would get a tiny IQR and values in
    # the hundreds, so the spread of the values winsorised at 0.5/99.5% (robust to a few outliers) is a floor.
    scale = max((q75 - q25) / 1.349, float(np.nanstd(np.clip(x, lo, hi))))
    if not np.isfinite(scale) or scale <= 1e-12:
        # Mostly one value (a rate that is nearly always 0): the range, not the tiny std, so the rare
        # other values stay within a few units instead of dominating every squared error.
        scale = float(np.nanmax(x) - np.nanmin(x)) / 2.0 if np.isfinite(x).any() else 0.0
    if not np.isfinite(scale) or scale <= 1e-12:
        scale = float(np.nanstd(x))
    if not np.isfinite(scale) or scale <= 1e-12:
        scale = 1.0
    return float(q50) if np.isfinite(q50) else 0.0, float(scale)


class Preprocessor:
    """Fit on training rows, then encode any table with the same feature columns."""

    def __init__(self, max_levels: int = 200, min_level_count: int = 5, log_transform: str = "auto"):
        self.max_levels = max_levels
        self.min_level_count = min_level_count
        self.log_transform = log_transform  # "auto" | "never"

    # -- fitting ---------------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, schema: Schema) -> Preprocessor:
        columns = list(schema.feature_columns)
        self._check_columns(frame, columns)
        self.columns_ = columns
        self.roles_ = {c: schema.column(c).role.value for c in columns}
        self.numeric_: dict[str, dict[str, Any]] = {}
        self.datetime_: dict[str, dict[str, Any]] = {}
        self.levels_: dict[str, list[str]] = {}
        self.rare_counts_: dict[str, dict[str, int]] = {}
        self.rare_total_: dict[str, int] = {}
        for c in columns:
            role = self.roles_[c]
            if role == Role.NUMERIC.value:
                self.numeric_[c] = self._fit_numeric(as_float(frame[c]))
            elif role == Role.DATETIME.value:
                parts = _datetime_parts(frame[c])
                missing = np.isnan(parts["hour"])
                self.datetime_[c] = {
                    "parts": {p: dict(zip(("center", "scale"), _robust_center_scale(v), strict=True))
                              for p, v in parts.items()},
                    "indicator": bool(missing.any()),
                }
            else:
                self.levels_[c], self.rare_counts_[c], self.rare_total_[c] = self._fit_levels(as_text(frame[c]))
        return self

    def _fit_numeric(self, x: np.ndarray) -> dict[str, Any]:
        finite = x[~np.isnan(x)]
        transform = "none"
        if self.log_transform == "auto" and finite.size and _heavy_tail(finite):
            transform = "log1p" if finite.min() >= 0 else "signed_log1p"
        t = apply_log(x, transform)
        center, scale = _robust_center_scale(t) if finite.size else (0.0, 1.0)
        return {"transform": transform, "center": center, "scale": scale,
                "indicator": bool(np.isnan(x).any()),
                "min": float(finite.min()) if finite.size else None,
                "max": float(finite.max()) if finite.size else None}

    def _fit_levels(self, text: np.ndarray) -> tuple[list[str], dict[str, int], int]:
        counts = pd.Series(text).value_counts()
        frequent = counts[counts >= self.min_level_count]
        levels = [str(v) for v in frequent.index[: self.max_levels] if str(v) != OTHER_LEVEL]
        rare = counts[~counts.index.isin(levels)]
        kept = {str(k): int(v) for k, v in rare.iloc[:MAX_RARE_VALUES].items()}
        return levels, kept, int(rare.sum())

    # -- transforming ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise NotFittedError("Preprocessor is not fitted: call fit() first")

    @staticmethod
    def _check_columns(frame: pd.DataFrame, columns: list[str]) -> None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                f"the data lacks the column(s) the model was trained on: {', '.join(missing)}")

    def transform(self, frame: pd.DataFrame) -> FeatureMatrix:
        self._check_fitted()
        self._check_columns(frame, self.columns_)
        n = len(frame)
        num_blocks: list[np.ndarray] = []
        num_names: list[str] = []
        num_source: list[int] = []
        num_log: list[tuple[float, float, float]] = []
        codes: list[np.ndarray] = []
        rare_nll: list[np.ndarray] = []
        cat_source: list[int] = []
        categories: list[list[str]] = []
        unseen: dict[str, int] = {}
        missing_counts: dict[str, int] = {}

        def add_missing(c: str, j: int, miss: np.ndarray, indicator: bool) -> None:
            if indicator:  # a 0/1 column saying the value was imputed
                num_blocks.append(miss.astype(np.float64))
                num_names.append(f"{c}__missing")
                num_source.append(j)
                num_log.append((0.0, 0.0, 1.0))
            if miss.any():
                missing_counts[c] = int(miss.sum())

        for j, c in enumerate(self.columns_):
            role = self.roles_[c]
            if role == Role.NUMERIC.value:
                spec = self.numeric_[c]
                x = as_float(frame[c])
                miss = np.isnan(x)
                z = (apply_log(x, spec["transform"]) - spec["center"]) / spec["scale"]
                z[miss] = 0.0  # the median
                num_blocks.append(np.clip(z, -_CLIP, _CLIP))
                num_names.append(c)
                num_source.append(j)
                num_log.append(({"log1p": 1.0, "signed_log1p": 2.0}.get(spec["transform"], 0.0),
                                float(spec["center"]), float(spec["scale"])))
                add_missing(c, j, miss, spec["indicator"])
            elif role == Role.DATETIME.value:
                spec = self.datetime_[c]
                parts = _datetime_parts(frame[c])
                miss = np.isnan(parts["hour"])
                for p in DATETIME_PARTS:
                    ps = spec["parts"][p]
                    z = (parts[p] - ps["center"]) / ps["scale"]
                    z[miss] = 0.0
                    num_blocks.append(z)
                    num_names.append(f"{c}__{p}")
                    num_source.append(j)
                    num_log.append((0.0, 0.0, 1.0))
                add_missing(c, j, miss, spec["indicator"])
            else:
                levels = self.levels_[c]
                text = as_text(frame[c])
                code = pd.Index(levels, dtype=object).get_indexer(text).astype(np.int64)
                other = code < 0
                code[other] = len(levels)
                surprise, n_unseen = self._rare_surprise(c, text, other)
                if n_unseen:
                    unseen[c] = n_unseen  # values never seen in training (scored as "<other>")
                codes.append(code)
                rare_nll.append(surprise)
                cat_source.append(j)
                categories.append(levels + [OTHER_LEVEL])
        numeric = (np.column_stack(num_blocks).astype(np.float32) if num_blocks
                   else np.zeros((n, 0), dtype=np.float32))
        code_mat = np.column_stack(codes) if codes else np.zeros((n, 0), dtype=np.int64)
        return FeatureMatrix(numeric=numeric, numeric_names=num_names,
                             numeric_source=np.asarray(num_source, dtype=np.int64), codes=code_mat,
                             categorical_source=np.asarray(cat_source, dtype=np.int64),
                             categories=categories, source_columns=list(self.columns_),
                             unseen=unseen, missing=missing_counts,
                             rare_nll=np.column_stack(rare_nll) if rare_nll else None,
                             numeric_log=np.asarray(num_log, dtype=np.float64).reshape(-1, 3))

    def _rare_surprise(self, column: str, text: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, int]:
        out = np.zeros(len(text), dtype=np.float32)
        if not other.any():
            return out, 0
        counts = self.rare_counts_.get(column, {})
        total = self.rare_total_.get(column, 0)
        seen = pd.Series(text[other]).map(counts).fillna(0.0).to_numpy(dtype=np.float64)
        # never seen: half a count (a value seen once is still likelier than one never seen)
        out[other] = -np.log((np.maximum(seen, 0.5)) / (total + 1.0))
        complete = len(counts) < MAX_RARE_VALUES
        return out, int((seen == 0).sum()) if complete else int(other.sum())

    def fit_transform(self, frame: pd.DataFrame, schema: Schema) -> FeatureMatrix:
        return self.fit(frame, schema).transform(frame)

    @property
    def feature_columns(self) -> list[str]:
        self._check_fitted()
        return list(self.columns_)

    # -- back to the analyst's units -----------------------------------------------------------------
    def inverse_transform_expected(self, expected: np.ndarray, fm: FeatureMatrix | None = None) -> pd.DataFrame:
        """Map a detector's expectation in the encoded space (n, n_features, the ``values`` layout) to
        one expected value per original column: the de-scaled number for numeric columns (kept within
        the column's training range), the most likely level for categorical ones (``<other>`` means "a
        rare value"), and for datetime columns a short text with the expected hour/weekday/day/month."""
        self._check_fitted()
        expected = np.asarray(expected, dtype=np.float64)
        out: dict[str, Any] = {}
        pos = 0
        for c in self.columns_:  # numeric block first, in column order (as transform lays it out)
            role = self.roles_[c]
            if role == Role.NUMERIC.value:
                spec = self.numeric_[c]
                z = expected[:, pos] * spec["scale"] + spec["center"]
                # within the values the training rows had: a network extrapolates linearly for rows
                # unlike any it learnt, and "expected -700" for a count of 1 to 255 explains nothing
                value = invert_log(z, spec["transform"])
                lo, hi = spec.get("min"), spec.get("max")
                out[c] = value if lo is None or hi is None else np.clip(value, lo, hi)
                pos += 1 + int(spec["indicator"])
            elif role == Role.DATETIME.value:
                spec = self.datetime_[c]
                vals = {}
                for p in DATETIME_PARTS:
                    ps = spec["parts"][p]
                    vals[p] = np.rint(expected[:, pos] * ps["scale"] + ps["center"]).astype(np.int64)
                    pos += 1
                pos += int(spec["indicator"])
                out[c] = [f"hour {h}, weekday {w}, day {d}, month {m}" for h, w, d, m in
                          zip(vals["hour"], vals["weekday"], vals["day"], vals["month"], strict=True)]
        for c in self.columns_:
            if self.roles_[c] == Role.CATEGORICAL.value or c in self.levels_:
                levels = np.asarray(self.levels_[c] + [OTHER_LEVEL], dtype=object)
                block = expected[:, pos: pos + len(levels)]
                out[c] = levels[np.argmax(block, axis=1)]
                pos += len(levels)
        return pd.DataFrame({c: out[c] for c in self.columns_})

    # -- persistence (JSON-able) -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"format": _FORMAT_VERSION, "max_levels": self.max_levels,
                "min_level_count": self.min_level_count, "log_transform": self.log_transform,
                "columns": list(self.columns_), "roles": dict(self.roles_),
                "numeric": self.numeric_, "datetime": self.datetime_, "levels": self.levels_,
                "rare_counts": self.rare_counts_, "rare_total": self.rare_total_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        try:
            p = cls(max_levels=int(d["max_levels"]), min_level_count=int(d.get("min_level_count", 5)),
                    log_transform=str(d.get("log_transform", "auto")))
            p.columns_ = [str(c) for c in d["columns"]]
            p.roles_ = {str(k): str(v) for k, v in d["roles"].items()}
            p.numeric_ = {str(k): {"transform": str(v["transform"]), "center": float(v["center"]),
                                   "scale": float(v["scale"]), "indicator": bool(v["indicator"]),
                                   # descriptions written before the training range was kept lack it
                                   "min": None if v.get("min") is None else float(v["min"]),
                                   "max": None if v.get("max") is None else float(v["max"])}
                          for k, v in d.get("numeric", {}).items()}
            p.datetime_ = {str(k): {"parts": {str(pn): {"center": float(pv["center"]),
                                                        "scale": float(pv["scale"])}
                                              for pn, pv in v["parts"].items()},
                                    "indicator": bool(v["indicator"])}
                           for k, v in d.get("datetime", {}).items()}
            p.levels_ = {str(k): [str(x) for x in v] for k, v in d.get("levels", {}).items()}
            p.rare_counts_ = {str(k): {str(a): int(b) for a, b in v.items()}
                              for k, v in d.get("rare_counts", {}).items()}
            p.rare_total_ = {str(k): int(v) for k, v in d.get("rare_total", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"invalid preprocessing description: {exc!r}") from None
        for c in p.columns_:
            role = p.roles_.get(c)
            known = (p.numeric_ if role == Role.NUMERIC.value else
                     p.datetime_ if role == Role.DATETIME.value else p.levels_)
            if c not in known:
                raise ValueError(f"invalid preprocessing description: nothing fitted for column '{c}'")
        return p


def apply_log(x: np.ndarray, transform: str) -> np.ndarray:
    if transform == "log1p":
        return np.log1p(np.maximum(x, 0.0))
    if transform == "signed_log1p":
        return np.sign(x) * np.log1p(np.abs(x))
    return x.astype(np.float64, copy=True)


def invert_log(z: np.ndarray, transform: str) -> np.ndarray:
    z = np.clip(z, -700, 700)
    if transform == "log1p":
        return np.expm1(np.maximum(z, 0.0))
    if transform == "signed_log1p":
        return np.sign(z) * np.expm1(np.abs(z))
    return z


def _datetime_parts(series: pd.Series) -> dict[str, np.ndarray]:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        ts = series
    else:
        ts = pd.to_datetime(series, errors="coerce", format="mixed")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    dt = ts.dt
    return {p: getattr(dt, "day_of_week" if p == "weekday" else p).to_numpy(dtype=np.float64, na_value=np.nan)
            for p in DATETIME_PARTS}
