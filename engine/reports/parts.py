"""The pieces of a report computed once (figures, tables, counts) for both the HTML and PDF writers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.reports import figures
from engine.reports.context import ReportContext

EXTRA_LABELS = {"rows_per_s": "training speed (rows/s)", "batch_size": "batch size", "stopped_early": "stopped early"}


@dataclass
class ReportParts:
    counts: dict[str, int]
    metrics: dict[str, float] | None
    metrics_source: str
    model_rows: list[tuple[str, str]]
    threshold_rows: list[tuple[str, str]]
    histogram_png: bytes
    loss_png: bytes | None = None
    roc_pr_png: bytes | None = None
    record_pngs: list[bytes] = field(default_factory=list)


def fmt_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
        if abs(value) >= 1000:
            return f"{value:,.2f}"
        return f"{value:.5g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def prepare(context: ReportContext, progress: Callable[..., None] | None = None) -> ReportParts:
    def step(fraction: float, message: str) -> None:
        if progress:
            progress(fraction, message)

    step(0.05, "counting")
    counts = context.counts()
    metrics = context.metrics()
    target = context.evaluation_target()
    model_rows: list[tuple[str, str]] = []
    card = context.model
    if card is not None:
        model_rows.append(("detector", card.detector or "unknown"))
        for name, value in sorted(card.params.items()):
            model_rows.append((f"setting: {name}", fmt_value(value)))
        model_rows.append(("device", card.device or "not recorded"))
        model_rows.append(("training time", f"{card.fit_seconds:.1f} s" if card.fit_seconds is not None
                           else "not recorded"))
        if card.training_rows is not None:
            model_rows.append(("training rows", f"{card.training_rows:,}"))
        if card.loss_history:
            model_rows.append(("final training loss", fmt_value(card.loss_history[-1])))
        extra = dict(card.extra)
        epochs, best = extra.pop("epochs_run", None), extra.pop("best_epoch", None)
        if epochs is not None:
            model_rows.append(("epochs", f"{epochs}" + (f" (best: {int(best) + 1})" if isinstance(best, (int, float))
                                                         and best >= 0 else "")))
        for name, value in sorted(extra.items()):
            label = EXTRA_LABELS.get(name, name.replace("_", " "))
            if isinstance(value, bool):
                value = "yes" if value else "no"
            model_rows.append((label, fmt_value(value)))
    threshold_rows = [
        ("threshold (score)", fmt_value(context.threshold) if context.threshold is not None else "none set"),
        ("how it was chosen", context.threshold_method or "not recorded"),
        ("records at or above it", f"{counts['flagged']:,} of {counts['scored']:,}"
         + (f" ({100.0 * counts['flagged'] / counts['scored']:.2f}%)" if counts["scored"] else "")),
    ]
    if context.rules:
        covered = int(np.asarray(context.suppressed, dtype=bool).sum()) if context.suppressed is not None else 0
        above = int((np.asarray(context.suppressed, dtype=bool) & (np.asarray(context.scores) >= context.threshold))
                    .sum()) if context.suppressed is not None and context.threshold is not None else 0
        threshold_rows.append(("treated as normal by rules", f"{covered:,} records ({above:,} of them above the "
                                                             "threshold, not flagged)"))
    step(0.15, "drawing the score histogram")
    parts = ReportParts(counts=counts, metrics=metrics, metrics_source=target[2] if target else "",
                        model_rows=model_rows, threshold_rows=threshold_rows,
                        histogram_png=figures.score_histogram(context.scores, context.threshold))
    if card is not None and card.loss_history:
        step(0.25, "drawing the loss curve")
        parts.loss_png = figures.loss_curve(card.loss_history, card.validation_loss)
    if target is not None:
        step(0.35, "drawing ROC and precision-recall curves")
        truth, scores, source = target
        parts.roc_pr_png = figures.roc_pr(truth, scores, source)
    n = max(len(context.top_records), 1)
    for i, record in enumerate(context.top_records):
        step(0.4 + 0.4 * i / n, f"drawing record {i + 1} of {len(context.top_records)}")
        parts.record_pngs.append(figures.contribution_bars(record.contributions))
    return parts


def rules_rows(context: ReportContext) -> list[tuple[str, str, str]]:
    """(rule, what it says, records it covers) for the rules in force."""
    return [(r.name, r.description, f"{r.records:,}" + (f" ({r.confirmed} confirmed anomal{'y' if r.confirmed == 1 else 'ies'}!)"
                                                           if r.confirmed else "")) for r in context.rules]


def confirmed_rows(context: ReportContext) -> list[tuple[str, str, str, str, str]]:
    """(key, score, note, reason, reviewer) for each confirmed anomaly."""
    return [(r.key, fmt_value(r.score) if r.score is not None else "not in this file", r.note or "-",
             r.reason or "-", r.reviewer or "-") for r in context.confirmed_anomalies()]


def top_heading(context: ReportContext) -> str:
    n = len(context.top_records)
    if n:
        return f"Top {n} flagged records" if context.threshold is not None else f"Top {n} records by score"
    return "Flagged records"


def counts_rows(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [("scored", f"{counts['scored']:,}"), ("flagged", f"{counts['flagged']:,}"),
            ("reviewed", f"{counts['reviewed']:,}"), ("confirmed anomalies", f"{counts['confirmed']:,}"),
            ("false alarms", f"{counts['false_alarms']:,}"), ("unsure", f"{counts['unsure']:,}")]


def metrics_rows(metrics: dict[str, float]) -> list[tuple[str, str]]:
    rows = []
    for key, label in (("precision", "precision at the threshold"), ("recall", "recall at the threshold"),
                       ("f1", "F1 at the threshold"), ("aucroc", "ROC AUC"), ("aucpr", "average precision (PR AUC)"),
                       ("positives", "anomalies among them"), ("records", "records with a truth")):
        if key in metrics:
            value = metrics[key]
            rows.append((label, f"{value:,}" if isinstance(value, int) else
                         ("n/a" if value != value else f"{value:.3f}")))
    return rows


def top_values(record, limit: int = 6) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(header, rows) for the record's most contributing columns: column, value, [expected,] share."""
    names = list(record.contributions)[:limit]
    with_expected = any(record.expected.get(n) is not None for n in names)
    header = ("column", "value", "expected", "share") if with_expected else ("column", "value", "share")
    rows = []
    for name in names:
        row = [name, fmt_value(record.values.get(name))]
        if with_expected:
            row.append(fmt_value(record.expected.get(name)))
        row.append(share_text(record.contributions.get(name, 0.0)))
        rows.append(tuple(row))
    return header, rows


def share_text(share: float) -> str:
    return f"{100.0 * share:.0f}%"


def finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[np.isfinite(x)]
