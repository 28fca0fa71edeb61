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

from engine.feedback import default_keys
from engine.reports.queue import record_field, verdict_text

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
class RuleInForce:
    """A rule from the analyst's verdicts ("treat records like this as normal") and how many of the
    scored records it covers."""

    name: str
    description: str
    records: int = 0
    confirmed: int = 0  # records it covers that the analyst confirmed as anomalies: a rule to rethink


@dataclass
class VerdictRow:
    """One verdict as exports list it (the Verdicts sheet, the PDF's confirmed anomalies)."""

    key: str
    verdict: str
    note: str = ""
    reason: str = ""
    reviewer: str = ""
    time: str = ""
    score: float | None = None
    severity: float | None = None


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
    rules: list[RuleInForce] = field(default_factory=list)  # rules in force, with the records they cover
    suppressed: np.ndarray | None = None  # (n,) bool aligned with scores: a rule treats the record as normal
    skipped_rows: list[str] = field(default_factory=list)  # bad rows left out of the file, one line each

    def flagged_mask(self) -> np.ndarray:
        """Records at or above the threshold that no rule treats as normal."""
        scores = np.asarray(self.scores, dtype=np.float64)
        if self.threshold is None:
            return np.zeros(len(scores), dtype=bool)
        mask = scores >= self.threshold
        if self.suppressed is not None and len(self.suppressed) == len(scores):
            mask &= ~np.asarray(self.suppressed, dtype=bool)
        return mask

    def verdict_rows(self) -> list[VerdictRow]:
        """Every verdict given, oldest first, with the record's score where the record is here."""
        position = {k: i for i, k in enumerate(self.keys or [])}
        scores = np.asarray(self.scores, dtype=np.float64)
        rows = []
        for key, record in self.verdicts.items():
            i = position.get(str(key))
            rows.append(VerdictRow(
                key=str(key), verdict=verdict_text(record), note=str(record_field(record, "note") or ""),
                reason=str(record_field(record, "reason") or ""),
                reviewer=str(record_field(record, "user") or record_field(record, "reviewer") or ""),
                time=str(record_field(record, "time") or ""),
                score=float(scores[i]) if i is not None and i < len(scores) else None))
        return sorted(rows, key=lambda r: (r.time, r.key))

    def confirmed_anomalies(self) -> list[VerdictRow]:
        """The records the analyst confirmed as anomalies, highest score first."""
        rows = [r for r in self.verdict_rows() if r.verdict in CONFIRMED]
        return sorted(rows, key=lambda r: -(r.score if r.score is not None else -np.inf))

    def counts(self) -> dict[str, int]:
        scores = np.asarray(self.scores, dtype=np.float64)
        flagged = int(self.flagged_mask().sum())
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
            # against labels on every record, "predicted" is what the report calls flagged (rules applied)
            predicted = self.flagged_mask() if len(truth) == len(self.scores) else scores >= self.threshold
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


def flagged_order(scores: np.ndarray, threshold: float | None, suppressed: np.ndarray | None = None,
                  top_n: int | None = None) -> np.ndarray:
    """Positions of the flagged records (at or above ``threshold``, not covered by a rule), highest
    score first; every record by score when there is no threshold."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    keep = np.ones(len(scores), dtype=bool) if threshold is None else scores >= threshold
    if suppressed is not None and len(suppressed) == len(scores):
        keep &= ~np.asarray(suppressed, dtype=bool)
    order = order[keep[order]]
    return order if top_n is None else order[:top_n]


def top_flagged_records(frame: pd.DataFrame, score_result: Any, keys: Sequence[str],
                        verdicts: Mapping[str, Any] | None = None, top_n: int = 10,
                        max_features: int = 8, threshold: float | None = None,
                        suppressed: np.ndarray | None = None) -> list[FlaggedRecord]:
    """The ``top_n`` highest-scoring flagged records (above ``threshold``, not covered by a rule)
    with their contributions, values and verdicts."""
    scores = np.asarray(score_result.scores, dtype=np.float64)
    order = flagged_order(scores, threshold, suppressed, top_n)
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
                        include_queue: bool = True, rules: Sequence[Any] = (),
                        skipped_rows: Sequence[str] = ()) -> ReportContext:
    """Everything a report needs from a scored file, in one call (GUI: File > Export...). ``rules``
    (engine.rules.Rule) take the records they match out of the flagged ones and are listed with
    how many records they cover; ``skipped_rows`` are the bad rows left out when the file was read."""
    from engine.reports.queue import queue_table

    keys = default_keys(frame, schema) if keys is None else [str(k) for k in keys]
    in_force, suppressed = rules_in_force(rules, frame, keys, verdicts)
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
        verdicts=verdicts, rules=in_force, suppressed=suppressed, skipped_rows=[str(r) for r in skipped_rows],
        top_records=top_flagged_records(frame, score_result, keys, verdicts, top_n, threshold=threshold,
                                        suppressed=suppressed),
        queue=queue_table(frame, schema, score_result, keys, verdicts, threshold, top_k_features,
                          suppressed=suppressed, rule_names=_rule_names(rules, frame) if rules else None)
        if include_queue else None)


def rules_in_force(rules: Sequence[Any], frame: pd.DataFrame, keys: Sequence[str] = (),
                   verdicts: Mapping[str, Any] | None = None) -> tuple[list[RuleInForce], np.ndarray | None]:
    """(each rule with the records it covers and the confirmed anomalies among them, the mask of
    records any rule covers; None without rules)."""
    if not rules:
        return [], None
    from engine.rules import matching_rule

    names = matching_rule(rules, frame)
    confirmed = np.zeros(len(frame), dtype=bool)
    if verdicts and len(keys) == len(frame):
        confirmed = np.array([verdict_text(verdicts.get(str(k))) in CONFIRMED if str(k) in verdicts else False
                              for k in keys], dtype=bool)
    listed = [RuleInForce(name=r.name, description=r.describe(), records=int((names == r.name).sum()),
                          confirmed=int(((names == r.name) & confirmed).sum())) for r in rules]
    return listed, names != ""


def _rule_names(rules: Sequence[Any], frame: pd.DataFrame) -> np.ndarray:
    from engine.rules import matching_rule

    return matching_rule(rules, frame)


def _threshold_rule_text(rule: Any) -> str:
    """How the threshold was chosen, from whatever form a session keeps it in (text, a mapping or an
    object with method/parameter/explanation)."""
    if rule is None:
        return ""
    if isinstance(rule, str):
        return rule
    get = (lambda k: rule.get(k)) if isinstance(rule, Mapping) else (lambda k: getattr(rule, k, None))
    explanation = get("explanation")
    if explanation:
        return str(explanation)
    method = get("method")
    if method is None:
        return str(rule)
    method = getattr(method, "value", method)
    parameter = get("parameter")
    return f"{method}" + (f", parameter {parameter:g}" if isinstance(parameter, (int, float)) else "")


def report_context_from_session(session: Any, title: str = "Anomaly Desk report", author: str = "",
                                notes: str = "", *, top_n: int = 10, top_k_features: int = 3,
                                labels: np.ndarray | None = None) -> ReportContext:
    """A report of a review session (engine.session.Session, or anything with its attributes):
    frame, schema, keys, result (ScoreResult), model, threshold, threshold_rule, verdicts; and where
    the session has them, ``rules``, ``skipped_rows`` and the data file's name. Only reads."""
    frame = session.frame
    result = session.result
    if frame is None or result is None:
        from engine.errors import AnomalyDeskError

        raise AnomalyDeskError("nothing to report: the session has no scored file (load a file and train)")
    threshold = getattr(session, "threshold", None)
    file = ""
    for attr in ("data_file", "path", "file", "data_path"):
        value = getattr(session, attr, None)
        if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
            file = str(value)
            break
    skipped = getattr(session, "skipped_rows", None) or []
    return make_report_context(
        frame, session.schema, result, keys=[str(k) for k in session.keys], verdicts=dict(session.verdicts or {}),
        threshold=None if threshold is None else float(threshold),
        threshold_method=_threshold_rule_text(getattr(session, "threshold_rule", None)),
        model=getattr(session, "model", None), file=file, title=title, author=author, notes=notes, labels=labels,
        top_n=top_n, top_k_features=top_k_features, rules=list(getattr(session, "rules", None) or []),
        skipped_rows=[_skipped_text(r) for r in skipped])


def _skipped_text(row: Any) -> str:
    if isinstance(row, str):
        return row
    if isinstance(row, Mapping):
        number, reason = row.get("row"), row.get("reason") or row.get("problem") or ""
        return f"row {number}: {reason}".rstrip(": ")
    if isinstance(row, (tuple, list)) and len(row) == 2:
        return f"row {row[0]}: {row[1]}"
    return str(row)
