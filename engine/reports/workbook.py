"""The XLSX report: a Summary sheet (what was reviewed, how, and what was found), the Queue sheet
and a Verdicts sheet (every verdict with its note, reason, reviewer and time), so the workbook
carries the analyst's work and not only the scores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError
from engine.reports.context import ReportContext
from engine.reports.queue import Sheet, write_workbook

VERDICT_COLUMNS = ("key", "verdict", "note", "reason", "reviewer", "time", "score")
MAX_LISTED_SKIPPED = 1000


def summary_fields(context: ReportContext) -> pd.DataFrame:
    """(label, value) rows of the Summary sheet; numbers stay numbers."""
    counts = context.counts()
    card = context.model
    rows: list[tuple[str, object]] = [
        ("title", context.title), ("author", context.author or "not given"), ("created", context.created),
        ("notes", context.notes or ""), ("data file", context.dataset.file or "not recorded"),
        ("records scored", counts["scored"]),
        ("model", (card.detector or "unknown") if card is not None else "not recorded"),
    ]
    if card is not None and card.training_rows is not None:
        rows.append(("training rows", card.training_rows))
    rows += [
        ("threshold (score)", context.threshold if context.threshold is not None else "none set"),
        ("threshold rule", context.threshold_method or "not recorded"),
        ("flagged (at or above the threshold, no rule)", counts["flagged"]),
        ("reviewed", counts["reviewed"]),
        ("verdict: anomaly", counts["confirmed"]),
        ("verdict: normal", counts["false_alarms"]),
        ("verdict: unsure", counts["unsure"]),
    ]
    if context.keys is not None:
        reviewed = {str(k) for k, v in context.verdicts.items() if v is not None}
        flagged = context.flagged_mask()
        keys = np.asarray(context.keys, dtype=object)
        waiting = int(sum(1 for k in keys[flagged] if str(k) not in reviewed)) if len(keys) == len(flagged) else None
        if waiting is not None:
            rows.append(("flagged, not reviewed yet", waiting))
    if context.rules:
        rows.append(("rules in force", len(context.rules)))
        for rule in context.rules:
            rows.append((f"rule: {rule.name}", f"{rule.description}; covers {rule.records:,} record(s)"
                         + (f", {rule.confirmed} of them confirmed anomalies" if rule.confirmed else "")))
        if context.suppressed is not None:
            rows.append(("records treated as normal by rules", int(np.asarray(context.suppressed).sum())))
    else:
        rows.append(("rules in force", "none"))
    if context.skipped_rows:
        rows.append(("bad rows skipped when reading", len(context.skipped_rows)))
        for line in context.skipped_rows[:MAX_LISTED_SKIPPED]:
            rows.append(("skipped", line))
        if len(context.skipped_rows) > MAX_LISTED_SKIPPED:
            rows.append(("skipped", f"... and {len(context.skipped_rows) - MAX_LISTED_SKIPPED:,} more"))
    for problem in context.dataset.problems:
        rows.append(("data problem", problem))
    metrics = context.metrics()
    if metrics:
        for key in ("precision", "recall", "aucroc", "aucpr"):
            if key in metrics:
                rows.append((key, float(metrics[key])))
    return pd.DataFrame(rows, columns=["field", "value"])


def verdicts_table(context: ReportContext) -> pd.DataFrame:
    """Every verdict, oldest first: key, verdict, note, reason, reviewer, time, score."""
    rows = context.verdict_rows()
    return pd.DataFrame({
        "key": [r.key for r in rows], "verdict": [r.verdict for r in rows], "note": [r.note for r in rows],
        "reason": [r.reason for r in rows], "reviewer": [r.reviewer for r in rows],
        "time": [r.time for r in rows],
        "score": [np.nan if r.score is None else r.score for r in rows]}, columns=list(VERDICT_COLUMNS))


def write_report_workbook(path: str | Path, context: ReportContext,
                          progress: Callable[..., None] | None = None) -> Path:
    if context.queue is None:
        raise AnomalyDeskError("this report has no queue table to export as xlsx")
    sheets = [Sheet("Summary", summary_fields(context), kind="fields", title=context.title),
              Sheet("Queue", context.queue), Sheet("Verdicts", verdicts_table(context))]
    return write_workbook(path, sheets, progress)
