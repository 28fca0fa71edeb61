"""What leaves the desk: the review queue as CSV/XLSX and the report as HTML/PDF.

Public API (used by the GUI's File > Export... and by ``python main.py report``):
  export_queue(path, format, frame, schema, score_result, keys, verdicts, threshold, top_k_features=3)
  queue_table(...) -> DataFrame, write_table(path, table, format)
  make_report_context(frame, schema, score_result, ...) -> ReportContext
  report_context_from_session(session, title, author, notes) -> ReportContext
  build_report(path, format, context, progress=None)   format: html, pdf, csv or xlsx
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.errors import AnomalyDeskError
from engine.reports.context import (
    DatasetSummary,
    FlaggedRecord,
    ModelCard,
    ReportContext,
    make_report_context,
    report_context_from_session,
    top_flagged_records,
)
from engine.reports.queue import export_queue, queue_table, write_table
from engine.reports.safety import atomic_output, neutralise_frame, neutralise_text

REPORT_FORMATS = ("html", "pdf", "csv", "xlsx")

__all__ = ["REPORT_FORMATS", "DatasetSummary", "FlaggedRecord", "ModelCard", "ReportContext", "atomic_output",
           "build_report", "export_queue", "make_report_context", "neutralise_frame", "report_context_from_session", "neutralise_text",
           "queue_table", "top_flagged_records", "write_table"]


def build_report(path: str | Path, format: str | None, context: ReportContext,
                 progress: Callable[..., None] | None = None) -> Path:
    """Write the report for ``context`` to ``path`` (format from the suffix when None). csv writes the
    context's queue table; xlsx a workbook with Summary, Queue and Verdicts sheets; html and pdf the
    full report. Written atomically."""
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in REPORT_FORMATS:
        raise AnomalyDeskError(f"unknown report format '{fmt}': choose one of {', '.join(REPORT_FORMATS)}")
    if fmt in ("csv", "xlsx"):
        if context.queue is None:
            raise AnomalyDeskError("this report has no queue table to export as " + fmt)
        if fmt == "xlsx":  # Summary, Queue and Verdicts sheets
            from engine.reports.workbook import write_report_workbook

            return write_report_workbook(path, context, progress)
        return write_table(path, context.queue, fmt, progress=progress)
    from engine.reports.parts import prepare

    parts = prepare(context, progress)
    if progress:
        progress(0.85, f"writing {fmt.upper()}")
    with atomic_output(path) as tmp:
        if fmt == "html":
            from engine.reports.html import render_html

            tmp.write_text(render_html(context, parts), encoding="utf-8")
        else:
            from engine.reports.pdf import render_pdf

            render_pdf(tmp, context, parts)
    if progress:
        progress(1.0, f"wrote {path.name}")
    return path
