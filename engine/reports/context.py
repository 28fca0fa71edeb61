"""What a report says, as plain data: the GUI and the CLI fill a ReportContext, the HTML and PDF
writers only lay it out."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from engine.reports.queue import default_keys, record_field, verdict_text

MAX_RECORD_VALUES = 30  # a record's values kept for the report beyond its top features (wide files)
CONFIRMED = {"anomaly", "anomalous", "confirmed", "fraud", "true_positive", "1", "true", "yes"}
FALSE_ALARM = {"normal", "false_alarm", "false positive", "false_positive", "0", "false", "no"}


@dataclass
class DatasetSummary:
    file: str = ""
    rows: int = 0
    columns: list[tuple[str, str, str]] = field(default_factory=list)  # (name, role, dtype)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_schema(cls, file: str, rows: int, schema: Any, problems: Sequence[str] = ()) -> DatasetSummary:
        columns = []
        for c in getattr(schema, "columns", []):
            role = getattr(c.role, "value", c.role)
            columns.append((c.name, str(role), str(getattr(c, "dtype", ""))))
        all_problems = list(getattr(schema, "problems", []) or []) + [p for p in problems if p]
        return cls(file=str(file), rows=int(rows), columns=columns, problems=all_problems)


@dataclass
class ModelCard:
    detector: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    fit_seconds: float | None = None
    training_rows: int | None = None
    loss_history: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # other training metrics, shown as is

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> ModelCard:
        """From a bundle's model.json or AnomalyModel.model_card() (engine.pipeline), tolerating
        missing fields: detector, params, training {fit_seconds, rows, device, history}."""
        training = meta.get("training", meta.get("metrics", {}))
        metrics = dict(training) if isinstance(training, Mapping) else {}
        for key in ("fit_seconds", "rows", "device", "history"):
            if key in meta and key not in metrics:
                metrics[key] = meta[key]
        history = metrics.pop("history", None) or metrics.pop("loss_history", None) or {}
        train_loss: Any = history
        validation: Any = []
        extra: dict[str, Any] = {}
        if isinstance(history, Mapping):  # engine.training.TrainHistory.to_dict()
            train_loss = history.get("train_loss", history.get("train", []))
            validation = history.get("val_loss", history.get("validation", []))
            for key in ("epochs_run", "best_epoch", "stopped_early", "batch_size", "rows_per_s"):
                if key in history:
                    extra[key] = history[key]
            notes = history.get("notes")
            if notes:
                extra["training notes"] = "; ".join(str(n) for n in notes)
        fit_seconds = metrics.pop("fit_seconds", None)
        device = metrics.pop("device", None) or meta.get("device", "")
        rows = metrics.pop("rows", metrics.pop("training_rows", None))
        extra.update({k: v for k, v in metrics.items() if _is_simple(v)})
        if meta.get("seed") is not None:
            extra.setdefault("seed", meta["seed"])
        return cls(detector=str(meta.get("detector", "")), params=dict(meta.get("params", {}) or {}),
                   device=str(device or ""), fit_seconds=_float_or_none(fit_seconds),
                   training_rows=int(rows) if isinstance(rows, (int, float)) else None,
                   loss_history=[float(x) for x in train_loss or [] if _float_or_none(x) is not None],
                   validation_loss=[float(x) for x in validation or [] if _float_or_none(x) is not None],
                   extra=extra)

    @classmethod
    def from_model(cls, model: Any) -> ModelCard:
        card = getattr(model, "model_card", None)
        if callable(card):
            try:
                return cls.from_metadata(card())
            except Exception:  # noqa: BLE001 - an unfitted or partial model: fall back to its attributes
                pass
        return cls.from_metadata({"detector": getattr(model, "detector", ""),
                                  "params": getattr(model, "params", {}),
                                  "device": getattr(model, "device_", getattr(model, "device", "")),
                                  "fit_seconds": getattr(model, "fit_seconds_", None),
                                  "rows": getattr(model, "rows_", None),
                                  "history": getattr(model, "history_", None)})


@dataclass
class FlaggedRecord:
    key: str
    score: float
    severity: float
    contributions: dict[str, float]  # feature column -> share of the score
    values: dict[str, Any] = field(default_factory=dict)  # the record's values, top features first
    expected: dict[str, Any] = field(default_factory=dict)  # the model's expectation where it has one
    verdict: str = ""
    note: str = ""
    reason: str = ""
    reviewer: str = ""


@dataclass
class ReportContext:
    title: str = "Anomaly Desk report"
    author: str = ""
    notes: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    dataset: DatasetSummary = field(default_factory=DatasetSummary)
    model: ModelCard | None = None
    threshold: float | None = None
    threshold_method: str = ""
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    keys: list[str] | None = None  # aligned with scores; needed to match verdicts
    labels: np.ndarray | None = None  # ground truth (True = anomaly) aligned with scores
    label_source: str = ""
    verdicts: dict[str, Any] = field(default_factory=dict)  # key -> verdict record or text
    top_records: list[FlaggedRecord] = field(default_factory=list)
    queue: pd.DataFrame | None = None  # the table that csv/xlsx reports write

    def counts(self) -> dict[str, int]:
        scores = np.asarray(self.scores, dtype=np.float64)
        flagged = int((scores >= self.threshold).sum()) if self.threshold is not None else 0
        texts = [verdict_text(v) for v in self.verdicts.values()]
        return {"scored": int(len(scores)), "flagged": flagged,
                "reviewed": sum(1 for t in texts if t), "confirmed": sum(1 for t in texts if t in CONFIRMED),
                "false_alarms": sum(1 for t in texts if t in FALSE_ALARM),
                "unsure": sum(1 for t in texts if t and t not in CONFIRMED and t not in FALSE_ALARM)}

    def evaluation_target(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(truth, scores, what the truth is) for precision/recall/ROC/PR: the labels when there are
        some, else the analyst's anomaly/normal verdicts on the records reviewed."""
        scores = np.asarray(self.scores, dtype=np.float64)
        if self.labels is not None and len(self.labels) == len(scores):
            truth = np.asarray(self.labels, dtype=bool)
            if 0 < truth.sum() < len(truth):
                return truth, scores, self.label_source or "the label column"
        if self.keys is not None and self.verdicts:
            position = {k: i for i, k in enumerate(self.keys)}
            idx, truth = [], []
            for key, record in self.verdicts.items():
                text = verdict_text(record)
                i = position.get(str(key))
                if i is None or not (text in CONFIRMED or text in FALSE_ALARM):
                    continue
                idx.append(i)
                truth.append(text in CONFIRMED)
            t = np.asarray(truth, dtype=bool)
            if len(t) >= 2 and 0 < t.sum() < len(t):
                return t, scores[np.asarray(idx)], f"the analyst's verdicts ({len(t)} records reviewed)"
        return None

    def metrics(self) -> dict[str, float] | None:
        target = self.evaluation_target()
        if target is None:
            return None
        from sklearn.metrics import average_precision_score, roc_auc_score

        truth, scores, _ = target
        out = {"aucroc": float(roc_auc_score(truth, scores)), "aucpr": float(average_precision_score(truth, scores)),
               "positives": int(truth.sum()), "records": int(len(truth))}
        if self.threshold is not None:
            predicted = scores >= self.threshold
            tp = int((predicted & truth).sum())
            out["precision"] = tp / int(predicted.sum()) if predicted.any() else float("nan")
            out["recall"] = tp / int(truth.sum())
            p, r = out["precision"], out["recall"]
            out["f1"] = 2 * p * r / (p + r) if p == p and (p + r) > 0 else float("nan")
        return out


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _is_simple(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (list, dict)) or len(json.dumps(value)) < 200


def top_flagged_records(frame: pd.DataFrame, score_result: Any, keys: Sequence[str],
                        verdicts: Mapping[str, Any] | None = None, top_n: int = 10,
                        max_features: int = 8) -> list[FlaggedRecord]:
    """The ``top_n`` highest-scoring records with their contributions, values and verdicts."""
    scores = np.asarray(score_result.scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:top_n]
    lookup = {str(k): v for k, v in (verdicts or {}).items()}
    columns = list(score_result.columns)
    contributions = np.asarray(score_result.contributions, dtype=np.float64)
    expected = getattr(score_result, "expected", None)
    records = []
    for i in order:
        shares = {columns[j]: float(contributions[i, j]) for j in np.argsort(-contributions[i])[:max_features]}
        row = frame.iloc[i]
        shown = [c for c in shares if c in frame.columns] + list(frame.columns[:MAX_RECORD_VALUES])
        values = {c: _plain(row[c]) for c in dict.fromkeys(shown)}
        exp = {}
        if isinstance(expected, pd.DataFrame) and len(expected) == len(scores):
            exp = {c: _plain(expected.iloc[i][c]) for c in shares if c in expected.columns}
        record = lookup.get(str(keys[i]))
        records.append(FlaggedRecord(
            key=str(keys[i]), score=float(scores[i]), severity=float(score_result.severity[i]),
            contributions=shares, values=values, expected=exp,
            verdict=verdict_text(record) if record is not None else "",
            note=str(record_field(record, "note") or ""), reason=str(record_field(record, "reason") or ""),
            reviewer=str(record_field(record, "user") or record_field(record, "reviewer") or "")))
    return records


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def make_report_context(frame: pd.DataFrame, schema: Any, score_result: Any, *, keys: Sequence[Any] | None = None,
                        verdicts: Mapping[Any, Any] | None = None, threshold: float | None = None,
                        threshold_method: str = "", model: Any = None, model_metadata: Mapping | None = None,
                        file: str = "", title: str = "Anomaly Desk report", author: str = "", notes: str = "",
                        labels: np.ndarray | None = None, top_n: int = 10, top_k_features: int = 3,
                        include_queue: bool = True) -> ReportContext:
    """Everything a report needs from a scored file, in one call (GUI: File > Export...)."""
    from engine.reports.queue import queue_table

    keys = default_keys(frame, schema) if keys is None else [str(k) for k in keys]
    verdicts = {str(k): v for k, v in (verdicts or {}).items()}
    if labels is None and getattr(schema, "label_column", None) and schema.label_column in frame.columns:
        from engine.io import label_vector

        labels = label_vector(frame, schema)
    card = None
    if model_metadata is not None:
        card = ModelCard.from_metadata(model_metadata)
    elif model is not None:
        card = ModelCard.from_model(model)
    return ReportContext(
        title=title, author=author, notes=notes,
        dataset=DatasetSummary.from_schema(file, len(frame), schema),
        model=card, threshold=threshold, threshold_method=threshold_method,
        scores=np.asarray(score_result.scores, dtype=np.float64), keys=keys, labels=labels,
        label_source=f"the label column '{schema.label_column}'" if labels is not None and getattr(
            schema, "label_column", None) else "labels",
        verdicts=verdicts, top_records=top_flagged_records(frame, score_result, keys, verdicts, top_n),
        queue=queue_table(frame, schema, score_result, keys, verdicts, threshold, top_k_features)
        if include_queue else None)
