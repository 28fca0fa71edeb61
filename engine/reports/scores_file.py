"""Reading a scores file written by ``score`` (engine.scoring.files) back into a report context, for
``python main.py report SCORES.csv``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import DataError
from engine.reports.context import (
    MAX_RECORD_VALUES,
    DatasetSummary,
    FlaggedRecord,
    ModelCard,
    ReportContext,
    RuleInForce,
    flagged_order,
    top_flagged_records,
)
from engine.reports.queue import record_field, verdict_text
from engine.reports.safety import FORMULA_PREFIXES, restore_text
from engine.scoring.table import LEAD, original_name, split_columns


@dataclass
class ScoresFile:
    path: str
    table: pd.DataFrame  # the whole file
    originals: pd.DataFrame  # the scored file's own columns, under their own names
    top_k: int  # how many feature_i/share_i pairs the file has

    @property
    def keys(self) -> list[str]:
        """Record keys as the verdict store knows them (the export's quote before a key such as
        ``-17`` or ``=A1``, added against formula injection, taken off again)."""
        keys = self.table["key"].astype(str)
        quoted = keys.str.startswith("'") & keys.str[1:2].isin(list(FORMULA_PREFIXES))
        return keys.where(~quoted, keys.str[1:]).tolist()

    def content_hashes(self, schema) -> np.ndarray | None:
        """The content hash of each row as the verdict store knows it (engine.feedback.content_hashes over
        the scored file's own columns, with the export's quotes against formulas taken off); None when
        the file lacks a column the hash covers."""
        from engine.feedback import content_hashes
        from engine.schema import Role

        hashed = {c.name for c in schema.columns if c.role not in (Role.LABEL, Role.IGNORED)
                  and c.name != schema.label_column}
        if not hashed or not hashed <= set(self.originals.columns):
            return None  # the file does not carry every column the hash covers: compare by key only
        originals = self.originals.copy()
        for name in originals.columns:
            if originals[name].dtype == object or pd.api.types.is_string_dtype(originals[name]):
                originals[name] = originals[name].map(restore_text)
        return content_hashes(originals.reset_index(drop=True), schema)

    @property
    def scores(self) -> np.ndarray:
        return self.table["score"].to_numpy(dtype=np.float64)

    @property
    def suppressed(self) -> np.ndarray | None:
        """Records a project's rule treated as normal when the file was scored; None without rules."""
        if "rule" not in self.table.columns:
            return None
        return (self.table["rule"].fillna("").astype(str).str.strip() != "").to_numpy()

    def flagged_threshold(self) -> float | None:
        """The lowest score flagged in the file: the threshold ``score`` used."""
        flagged = _as_bool(self.table["flagged"])
        return float(self.scores[flagged].min()) if flagged.any() else None


def _as_bool(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        return s.fillna(False).to_numpy(dtype=bool)
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"]).to_numpy()


def read_scores_file(path: str | Path) -> ScoresFile:
    from engine.io import read_csv

    loaded = read_csv(path)
    frame = loaded.frame
    frame.columns = [restore_text(c) for c in frame.columns]  # headers were neutralised like any cell
    missing = [c for c in LEAD if c not in frame.columns]
    if missing:
        raise DataError(f"not a scores file written by 'score': no column(s) {', '.join(missing)}", file=str(path))
    scores = pd.to_numeric(frame["score"], errors="coerce")
    bad = ~np.isfinite(scores.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():  # a NaN score would count as "not flagged": refuse rather than report on it
        row = int(np.flatnonzero(bad)[0])
        raise DataError("the score is not a finite number", file=str(path), row=loaded.row_number(row),
                        column="score")
    frame = frame.assign(score=scores.astype(np.float64),
                         severity=pd.to_numeric(frame["severity"], errors="coerce").astype(np.float64))
    top_k, original_cols = split_columns(list(frame.columns))
    originals = frame[original_cols].rename(columns={c: original_name(c) for c in original_cols})
    return ScoresFile(path=str(path), table=frame, originals=originals, top_k=top_k)


def queue_from_scores(sf: ScoresFile, verdicts: Mapping[str, Any] | None, threshold: float | None) -> pd.DataFrame:
    """The export layout (engine.reports.queue) from a scores file, with verdicts joined, highest first."""
    t = sf.table
    keys = sf.keys
    lookup = {str(k): v for k, v in (verdicts or {}).items()}
    per_row = [lookup.get(k) for k in keys]
    flagged = sf.scores >= threshold if threshold is not None else _as_bool(t["flagged"])
    suppressed = sf.suppressed
    if suppressed is not None:
        flagged = flagged & ~suppressed
    out = pd.DataFrame({
        "key": keys, "severity": t["severity"].to_numpy(), "score": sf.scores, "flagged": flagged,
        "verdict": [verdict_text(r) if r is not None else "" for r in per_row],
        "note": [record_field(r, "note") or "" for r in per_row],
        "reason": [record_field(r, "reason") or "" for r in per_row],
        "reviewer": [record_field(r, "user") or "" for r in per_row],
        "time": [str(record_field(r, "time") or "") for r in per_row]})
    if suppressed is not None:
        out.insert(4, "rule", t["rule"].fillna("").astype(str).to_numpy())
    for r in range(1, sf.top_k + 1):
        out[f"feature_{r}"] = t[f"feature_{r}"].to_numpy() if f"feature_{r}" in t else ""
        out[f"share_{r}"] = t[f"share_{r}"].to_numpy() if f"share_{r}" in t else np.nan
    originals = sf.originals.reset_index(drop=True)
    originals = originals.rename(columns={c: f"{c} (original)" for c in originals.columns if c in out.columns})
    out = pd.concat([out, originals], axis=1)
    return out.iloc[np.argsort(-sf.scores, kind="stable")].reset_index(drop=True)


def labels_from_column(values: pd.Series, normal_value: str | None = None) -> np.ndarray:
    """Ground truth (True = anomaly) from a label column: 0/1 or true/false, else every value other
    than ``normal_value`` (by default the most frequent value) is an anomaly."""
    text = values.astype("string").fillna("").str.strip()
    if normal_value is not None:
        return (text != str(normal_value).strip()).to_numpy(dtype=bool)
    lower = text.str.lower()
    if set(lower.unique()) <= {"0", "1", "0.0", "1.0", "true", "false", ""}:
        return lower.isin(["1", "1.0", "true"]).to_numpy(dtype=bool)
    return (text != text.value_counts().index[0]).to_numpy(dtype=bool)


def _records_from_file(sf: ScoresFile, verdicts: Mapping[str, Any], top_n: int,
                       threshold: float | None) -> list[FlaggedRecord]:
    """Top flagged records when no model is at hand: the contributions the file kept (top features)."""
    order = flagged_order(sf.scores, threshold, sf.suppressed, top_n)
    keys = sf.keys
    records = []
    for i in order:
        row = sf.table.iloc[i]
        shares = {}
        for r in range(1, sf.top_k + 1):
            name, share = row.get(f"feature_{r}"), row.get(f"share_{r}")
            if isinstance(name, str) and name and pd.notna(share):
                shares[name] = float(share)
        rest = 1.0 - sum(shares.values())
        if shares and rest > 0.005:
            shares["(all other columns)"] = rest
        original = sf.originals.iloc[i]
        shown = [c for c in shares if c in sf.originals.columns] + list(sf.originals.columns[:MAX_RECORD_VALUES])
        values = {c: original[c] for c in dict.fromkeys(shown)}
        record = verdicts.get(keys[i])
        records.append(FlaggedRecord(
            key=keys[i], score=float(sf.scores[i]), severity=float(row["severity"]), contributions=shares,
            values=values, verdict=verdict_text(record) if record is not None else "",
            note=str(record_field(record, "note") or ""), reason=str(record_field(record, "reason") or ""),
            reviewer=str(record_field(record, "user") or "")))
    return records


def context_from_scores_file(sf: ScoresFile, *, model: Any = None, model_metadata: Mapping | None = None,
                             verdicts: Mapping[str, Any] | None = None, threshold: float | None = None,
                             threshold_method: str = "", label_column: str | None = None,
                             normal_value: str | None = None, title: str = "Anomaly Desk report",
                             author: str = "", notes: str = "", data_file: str = "",
                             top_n: int = 10) -> ReportContext:
    verdicts = {str(k): v for k, v in (verdicts or {}).items()}
    if threshold is None:
        threshold = sf.flagged_threshold()
        threshold_method = threshold_method or "as flagged in the scores file (lowest flagged score)"
    labels = None
    label_source = ""
    if label_column:
        if label_column not in sf.originals.columns:
            raise DataError(f"no label column '{label_column}' in the scores file", file=sf.path, column=label_column)
        labels = labels_from_column(sf.originals[label_column], normal_value)
        label_source = f"the label column '{label_column}'"
    schema = None
    if model is not None:
        from engine.model_reuse import carried_schema

        schema = carried_schema(model, sf.originals.columns)
        if label_column and label_column in schema.names:
            from engine.schema import Role

            for c in schema.columns:
                if c.name == label_column:
                    c.role = Role.LABEL
    else:
        from engine.io import infer_schema

        schema = infer_schema(sf.originals, path=sf.path)
    dataset = DatasetSummary.from_schema(data_file or f"{Path(sf.path).name} (scores file)", len(sf.table), schema)
    keys = sf.keys
    if model is not None:
        order = flagged_order(sf.scores, threshold, sf.suppressed, top_n)
        top = sf.originals.iloc[order].reset_index(drop=True)
        result = model.score(top)
        records = top_flagged_records(top, result, [keys[i] for i in order], verdicts, top_n=top_n)
        # the file's scores are the ones reported (a model re-run on the same rows gives the same)
        for rec, i in zip(records, order, strict=False):
            rec.score, rec.severity = float(sf.scores[i]), float(sf.table["severity"].iloc[i])
    else:
        records = _records_from_file(sf, verdicts, top_n, threshold)
    card = None
    if model_metadata:
        card = ModelCard.from_metadata(model_metadata)
    elif model is not None:
        card = ModelCard.from_model(model)
    return ReportContext(title=title, author=author, notes=notes, dataset=dataset, model=card,
                         threshold=threshold, threshold_method=threshold_method, scores=sf.scores, keys=keys,
                         labels=labels, label_source=label_source, verdicts=verdicts, top_records=records,
                         queue=queue_from_scores(sf, verdicts, threshold), suppressed=sf.suppressed,
                         rules=_rules_in_file(sf))


def _rules_in_file(sf: ScoresFile) -> list[RuleInForce]:
    """The rules named in a scores file's ``rule`` column, with the records each covered."""
    if sf.suppressed is None:
        return []
    names = sf.table["rule"].fillna("").astype(str)
    counts = names[names.str.strip() != ""].value_counts()
    return [RuleInForce(name=str(n), description="(as applied when the file was scored)", records=int(c))
            for n, c in counts.items()]
