"""Applying a saved model to a new file: what differs from the schema it was trained on, and how
each difference is handled.

- a feature column missing from the new file: refused, naming the columns (nothing can be scored);
- a feature column whose type changed (a numeric column now holding text, a date column no longer
  holding dates): refused, naming the column and showing examples;
- non-numeric values in a numeric column (a few): scored as missing, counted;
- categorical values the model has no level for (never seen in training, or too rare to get a level
  of their own): scored as the rare ``<other>`` level, counted with examples;
- extra columns: carried through to the output, not used by the model;
- a missing identifier/label/text column: not needed for scoring, said so.

The new file keeps the model's column roles (``carried_schema``) and the model's threshold
(``model_threshold``), so next month's file is scored exactly as this month's was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import safe_json
from engine.errors import AnomalyDeskError, ModelFileError, SchemaMismatchError
from engine.features import as_text
from engine.schema import ColumnInfo, Role, Schema

#: a numeric/datetime column whose non-missing values fail to parse in more than this share has
#: changed type (text where numbers were); below it the odd bad value is scored as missing
CHANGED_TYPE_SHARE = 0.5
MAX_EXAMPLES = 5


@dataclass
class TypeChange:
    column: str
    expected: str  # role/type the model was trained on
    found: str
    bad_share: float  # share of non-missing values that do not parse as ``expected``
    examples: list[str] = field(default_factory=list)


@dataclass
class SchemaDifferences:
    """How a new file differs from a model's training schema; accumulates over chunks."""

    file: str = ""
    missing: list[str] = field(default_factory=list)  # feature columns absent: refused
    missing_other: list[tuple[str, str]] = field(default_factory=list)  # (column, role) absent, not needed
    extra: list[str] = field(default_factory=list)  # in the file, not in the model: passed through
    changed_type: list[TypeChange] = field(default_factory=list)
    unseen: dict[str, int] = field(default_factory=dict)  # column -> rows with a value the model has no level for
    unseen_examples: dict[str, list[str]] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)  # column -> unparseable values scored as missing
    invalid_examples: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0

    @property
    def fits(self) -> bool:
        return not self.missing and not self.changed_type

    @property
    def identical(self) -> bool:
        return self.fits and not (self.missing_other or self.extra or self.unseen or self.invalid)

    def lines(self) -> list[str]:
        """One sentence per difference, for the CLI's stderr and the GUI's dialog."""
        out = []
        if self.missing:
            out.append(f"missing column(s) the model needs: {', '.join(self.missing)} (cannot score without them)")
        for change in self.changed_type:
            out.append(f"column '{change.column}' changed type: the model expects {change.expected}, the file has "
                       f"{change.found} ({100 * change.bad_share:.0f}% of its values do not parse, e.g. "
                       f"{', '.join(repr(e) for e in change.examples)})")
        for name, role in self.missing_other:
            how = "records are keyed by row" if role == Role.IDENTIFIER.value else "not needed for scoring"
            out.append(f"column '{name}' ({role}) is not in the file: {how}")
        if self.extra:
            out.append(f"extra column(s) not in the model: {', '.join(self.extra)} (passed through, not used)")
        for name, count in self.invalid.items():
            ex = ", ".join(repr(e) for e in self.invalid_examples.get(name, []))
            out.append(f"column '{name}': {count:,} value(s) are not numbers/dates (e.g. {ex}), scored as missing")
        for name, count in self.unseen.items():
            ex = ", ".join(repr(e) for e in self.unseen_examples.get(name, []))
            out.append(f"column '{name}': {count:,} row(s) hold categories the model keeps no level for (new values, "
                       f"or values too rare in training), e.g. {ex}: scored as the rare '<other>' level")
        return out

    def raise_if_unfit(self) -> None:
        if self.fits:
            return
        cols = self.missing + [c.column for c in self.changed_type]
        where = f"{self.file}: " if self.file else ""
        n_fatal = (1 if self.missing else 0) + len(self.changed_type)  # lines() lists these first
        raise SchemaMismatchError(f"{where}does not fit the model's schema (column(s) {', '.join(cols)}): "
                                  + "; ".join(self.lines()[:n_fatal]))

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "fits": self.fits, "missing": self.missing,
                "missing_other": [list(x) for x in self.missing_other], "extra": self.extra,
                "changed_type": [vars(c) for c in self.changed_type], "unseen": self.unseen,
                "unseen_examples": self.unseen_examples, "invalid": self.invalid,
                "invalid_examples": self.invalid_examples, "rows": self.rows}

    # -- accumulation over chunks -----------------------------------------------------------------
    def _add(self, counts: dict[str, int], examples: dict[str, list[str]], column: str, n: int,
             values: Iterable[Any]) -> None:
        if n <= 0:
            return
        counts[column] = counts.get(column, 0) + int(n)
        have = examples.setdefault(column, [])
        for v in values:
            if len(have) >= MAX_EXAMPLES:
                break
            if str(v) not in have:
                have.append(str(v))


def _model_schema(model: Any) -> Schema:
    schema = getattr(model, "schema_", None)
    if schema is None:
        raise AnomalyDeskError("the model is not fitted: it has no training schema")
    return schema


def _known_levels(model: Any) -> dict[str, set[str]]:
    pre = getattr(model, "preprocessor_", None)
    levels = getattr(pre, "levels_", None) or {}
    return {c: set(map(str, v)) for c, v in levels.items()}


def _unparseable(series: pd.Series, role: str) -> tuple[np.ndarray, int]:
    """(mask of present values that do not parse as ``role``, number of present values)."""
    present = np.array(series.notna().to_numpy(), dtype=bool)
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        present &= (series.astype("string").str.strip().fillna("") != "").to_numpy()
    if role == Role.NUMERIC.value:
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            return np.zeros(len(series), dtype=bool), int(present.sum())
        parsed = pd.to_numeric(series, errors="coerce").notna().to_numpy()
    else:
        if pd.api.types.is_datetime64_any_dtype(series):
            return np.zeros(len(series), dtype=bool), int(present.sum())
        parsed = pd.to_datetime(series, errors="coerce", format="mixed").notna().to_numpy()
    return present & ~parsed, int(present.sum())


def compare_schema(model: Any, columns: Iterable[str], *, file: str = "") -> SchemaDifferences:
    """Header-level differences (missing, extra) between a model and a file's columns."""
    schema = _model_schema(model)
    columns = [str(c) for c in columns]
    present = set(columns)
    features = list(schema.feature_columns)
    diff = SchemaDifferences(file=str(file))
    diff.missing = [c for c in features if c not in present]
    known = set(schema.names)
    diff.missing_other = [(c.name, c.role.value) for c in schema.columns
                          if c.name not in present and c.name not in features
                          and c.role not in (Role.IGNORED,)]
    diff.extra = [c for c in columns if c not in known]
    return diff


def check_values(model: Any, frame: pd.DataFrame, diff: SchemaDifferences, *, first: bool = False) -> None:
    """Add a chunk's value-level differences to ``diff``: type changes (decided on the ``first``
    chunk), unparseable values and categories without a level."""
    schema = _model_schema(model)
    levels = _known_levels(model)
    diff.rows += len(frame)
    for name in schema.feature_columns:
        if name not in frame.columns:
            continue
        role = schema.column(name).role.value
        s = frame[name]
        if role in (Role.NUMERIC.value, Role.DATETIME.value):
            bad, n_present = _unparseable(s, role)
            n_bad = int(bad.sum())
            if not n_bad:
                continue
            examples = pd.unique(s[bad].astype(str))[:MAX_EXAMPLES]
            share = n_bad / max(n_present, 1)
            if first and share > CHANGED_TYPE_SHARE and all(c.column != name for c in diff.changed_type):
                expected = "numbers" if role == Role.NUMERIC.value else "dates"
                diff.changed_type.append(TypeChange(name, f"{expected} ({role})", "text", share,
                                                    [str(e) for e in examples]))
            else:
                diff._add(diff.invalid, diff.invalid_examples, name, n_bad, examples)
        elif name in levels:
            text = as_text(s)
            known = levels[name]
            mask = ~pd.Series(text).isin(known).to_numpy()
            if mask.any():
                examples = [v for v in pd.unique(text[mask]) if v != "<missing>"][:MAX_EXAMPLES]
                diff._add(diff.unseen, diff.unseen_examples, name, int(mask.sum()), examples)


def schema_differences(model: Any, frame: pd.DataFrame, *, file: str = "") -> SchemaDifferences:
    """All differences between a model's schema and a whole (in-memory) table."""
    diff = compare_schema(model, frame.columns, file=file)
    check_values(model, frame, diff, first=True)
    return diff


def carried_schema(model: Any, columns: Iterable[str]) -> Schema:
    """The model's column roles applied to a new file's columns; extra columns are ignored."""
    schema = _model_schema(model)
    known = {c.name: c for c in schema.columns}
    out: list[ColumnInfo] = []
    for name in columns:
        name = str(name)
        if name in known:
            out.append(replace(known[name], reason=f"{known[name].reason} (carried over from the model)"))
        else:
            out.append(ColumnInfo(name=name, role=Role.IGNORED, reason="not in the model's schema"))
    label = schema.label_column if schema.label_column in {c.name for c in out} else None
    return Schema(columns=out, label_column=label, normal_value=schema.normal_value if label else None)


def model_threshold(model: Any, override: float | None = None) -> tuple[float | None, str]:
    """The threshold to flag with and how it was chosen: ``override``, else the one saved with the
    model, else the score that 1% of the training records reach (target false-positive rate 1%)."""
    if override is not None:
        return float(override), "given by the analyst"
    for holder in (model, getattr(model, "metadata_", None), getattr(model, "metadata", None)):
        value = holder.get("threshold") if isinstance(holder, dict) else getattr(holder, "threshold_", None)
        if isinstance(value, dict):
            method = str(value.get("method") or "saved with the model")
            explanation = value.get("explanation")
            value = value.get("value")
            if value is not None:
                return float(value), str(explanation or method)
        elif value is not None and not callable(value):
            return float(getattr(value, "value", value)), str(getattr(value, "explanation", "saved with the model"))
    train_scores = getattr(model, "train_scores_", None)
    if train_scores is not None and len(train_scores):
        from engine.thresholds import by_target_fpr

        t = by_target_fpr(np.asarray(train_scores, dtype=np.float64), 0.01)
        return float(t.value), t.explanation
    return None, "no threshold: none saved with the model"


def load_model(model_dir: str | Path):
    """Open a saved model bundle (engine.bundle through AnomalyModel.load), with a clear message."""
    from engine.pipeline import AnomalyModel

    path = Path(model_dir)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model folder")
    loader = getattr(AnomalyModel, "load", None)
    if loader is None:
        raise ModelFileError(f"{path}: this build cannot open saved models yet")
    return loader(path)


def model_metadata(model_dir: str | Path | None, model: Any = None) -> dict[str, Any]:
    """The bundle's model.json as a dict (training metrics, device, loss history) for the model card."""
    if model is not None:
        for attr in ("metadata_", "metadata"):
            meta = getattr(model, attr, None)
            meta = meta() if callable(meta) else meta
            if isinstance(meta, dict):
                return meta
    if model_dir is not None:
        path = Path(model_dir) / "model.json"
        if path.is_file() and path.stat().st_size < 64 * 1024 * 1024:
            try:
                data = safe_json.load_json(path, max_bytes=64 * 1024 * 1024)
            except ModelFileError:
                data = None
            if isinstance(data, dict):
                return data
    return {}


@dataclass
class AppliedModel:
    """A saved model applied to a new file (GUI: File > Apply model to new file...)."""

    file: str
    frame: pd.DataFrame
    schema: Schema  # the model's roles on the new file's columns
    result: Any  # ScoreResult
    differences: SchemaDifferences
    threshold: float | None
    threshold_method: str
    keys: list[str]
    drift: Any = None  # engine.drift.DriftReport: does the file look like the data the model learnt?


def apply_model(model: Any, csv_path: str | Path, *, threshold: float | None = None,
                progress: Callable[..., None] | None = None) -> AppliedModel:
    """Load ``csv_path``, check it against the model's schema (refusing what does not fit), score it
    with the model's roles and threshold. ``model`` is a fitted AnomalyModel or a bundle folder."""
    from engine.feedback import default_keys
    from engine.io import read_csv

    if isinstance(model, (str, Path)):
        model = load_model(model)
    if progress:
        progress(0.05, f"reading {Path(csv_path).name}")
    loaded = read_csv(csv_path)
    diff = schema_differences(model, loaded.frame, file=str(csv_path))
    diff.raise_if_unfit()
    schema = carried_schema(model, loaded.frame.columns)
    if progress:
        progress(0.3, "scoring")
    result = model.score(loaded.frame)
    value, method = model_threshold(model, threshold)
    from engine.drift import DriftMonitor

    monitor = DriftMonitor(model, value, file=str(csv_path))
    monitor.add(loaded.frame, result.scores)
    if progress:
        progress(1.0, "scored")
    return AppliedModel(file=str(csv_path), frame=loaded.frame, schema=schema, result=result,
                        differences=diff, threshold=value, threshold_method=method,
                        keys=[str(k) for k in default_keys(loaded.frame, schema)], drift=monitor.report(diff))


def check_drift(model: Any, frame: pd.DataFrame, scores: np.ndarray | None = None, threshold: float | None = None,
                *, file: str = ""):
    """The drift report of an in-memory table (``scores`` and ``threshold`` for the flagged share)."""
    from engine.drift import DriftMonitor

    monitor = DriftMonitor(model, threshold, file=file)
    monitor.add(frame, scores)
    return monitor.report(schema_differences(model, frame, file=file))
