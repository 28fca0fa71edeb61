"""PDF report with fpdf2: the same sections as the HTML report, figures drawn by matplotlib."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace

from engine.reports.context import ReportContext
from engine.reports.parts import (
    ReportParts,
    confirmed_rows,
    counts_rows,
    fmt_value,
    metrics_rows,
    rules_rows,
    top_heading,
    top_values,
)

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu: covers any text a note may hold
ACCENT = (47, 93, 138)
HEADER_FILL = (221, 227, 234)


class _ReportPDF(FPDF):
    report_title = ""

    def header(self) -> None:
        if self.page_no() > 1:
            self.set_font("DejaVu", "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 5, self.report_title, new_x="LMARGIN", new_y="NEXT")
            self.ln(2)
            self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 6, f"Anomaly Desk · page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def _heading(pdf: FPDF, text: str, keep_with_next: float = 30) -> None:
    if pdf.get_y() > pdf.h - pdf.b_margin - 15 - keep_with_next:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 13)
    pdf.set_text_color(*ACCENT)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*ACCENT)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 9)


def _text(pdf: FPDF, text: str, size: float = 9, style: str = "") -> None:
    pdf.set_font("DejaVu", style, size)
    pdf.multi_cell(0, 4.6, text, new_x="LMARGIN", new_y="NEXT")


def _table(pdf: FPDF, rows, header=None, col_widths=None, width: float | None = None,
           line_height: float = 4.8) -> None:
    pdf.set_font("DejaVu", "", 8.5)
    head_style = FontFace(emphasis="BOLD", fill_color=HEADER_FILL)
    with pdf.table(col_widths=col_widths, width=width, align="LEFT", text_align="LEFT", line_height=line_height,
                   headings_style=head_style, first_row_as_headings=header is not None,
                   padding=1) as table:
        if header is not None:
            row = table.row()
            for cell in header:
                row.cell(str(cell))
        for values in rows:
            row = table.row()
            for cell in values:
                row.cell(str(cell))
    pdf.ln(1.5)


def _kv(pdf: FPDF, rows, width: float = 120, key_width: float = 45) -> None:
    pdf.set_font("DejaVu", "", 8.5)
    with pdf.table(col_widths=(key_width, width - key_width), width=width, align="LEFT", text_align="LEFT", line_height=4.8,
                   first_row_as_headings=False, padding=1) as table:
        for key, value in rows:
            row = table.row()
            row.cell(str(key), style=FontFace(emphasis="BOLD", fill_color=HEADER_FILL))
            row.cell(str(value))
    pdf.ln(1.5)


def _image_height(png: bytes, width: float) -> float:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return width * im.height / im.width


def _image(pdf: FPDF, png: bytes, width: float) -> None:
    height = _image_height(png, width)
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.image(io.BytesIO(png), x=pdf.l_margin, w=width)
    pdf.ln(1)


def _record(pdf: FPDF, number: int, record, png: bytes) -> None:
    """One flagged record: heading, verdict and note, then its values (left) beside its contribution chart."""
    chart_w = 78.0
    chart_h = _image_height(png, chart_w)
    header, rows = top_values(record)
    table_h = 5.4 * (len(rows) + 1)
    needed = 14 + (6 if record.note else 0) + max(chart_h, table_h)
    if pdf.get_y() + needed > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(0, 5.5, f"{number}. record {record.key}: score {fmt_value(record.score)}, "
                           f"severity {record.severity:.1f}", new_x="LMARGIN", new_y="NEXT")
    verdict = record.verdict or "not reviewed"
    line = f"Verdict: {verdict}" + (f" · reason: {record.reason}" if record.reason else "") + (
        f" · by {record.reviewer}" if record.reviewer else "")
    if record.verdict == "anomaly":
        pdf.set_text_color(156, 0, 6)
    elif record.verdict == "normal":
        pdf.set_text_color(0, 97, 0)
    _text(pdf, line)
    pdf.set_text_color(0, 0, 0)
    if record.note:
        _text(pdf, f"Note: {record.note}")
    top = pdf.get_y() + 1
    full = pdf.w - pdf.l_margin - pdf.r_margin
    table_w = full - chart_w - 4
    pdf.image(io.BytesIO(png), x=pdf.w - pdf.r_margin - chart_w, y=top, w=chart_w)
    pdf.set_y(top)
    widths = (30, table_w - 30 - 16, 16) if len(header) == 3 else (28, (table_w - 44) / 2, (table_w - 44) / 2, 16)
    _table(pdf, rows, header=header, col_widths=widths, width=table_w)
    pdf.set_y(max(pdf.get_y(), top + chart_h) + 4)


def render_pdf(path: Path, context: ReportContext, parts: ReportParts) -> None:
    pdf = _ReportPDF(format="A4")
    pdf.report_title = context.title
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_title(context.title)
    pdf.set_author(context.author)
    pdf.set_creator("Anomaly Desk")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_margins(15, 14, 15)
    pdf.add_page()
    full = pdf.w - pdf.l_margin - pdf.r_margin

    pdf.set_font("DejaVu", "B", 18)
    pdf.set_text_color(*ACCENT)
    pdf.multi_cell(0, 9, context.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(90, 90, 90)
    _text(pdf, f"{context.author or 'author not given'} · {context.created}")
    pdf.set_text_color(0, 0, 0)
    if context.notes:
        pdf.ln(2)
        pdf.set_fill_color(246, 248, 250)
        pdf.set_font("DejaVu", "", 9)
        pdf.multi_cell(0, 4.6, context.notes, fill=True, new_x="LMARGIN", new_y="NEXT")

    ds = context.dataset
    _heading(pdf, "Dataset")
    _kv(pdf, [("file", ds.file or "not recorded"), ("rows", f"{ds.rows:,}"), ("columns", str(len(ds.columns)))],
        width=full)
    if ds.columns:
        shown = ds.columns[:40]
        half = (len(shown) + 1) // 2 if len(shown) > 6 else len(shown)  # two tables side by side save a page
        top = pdf.get_y()
        _table(pdf, shown[:half], header=("column", "role", "type"), col_widths=(40, 26, 20), width=86,
               line_height=4.2)
        bottom = pdf.get_y()
        if shown[half:]:
            pdf.set_y(top)
            left = pdf.l_margin
            pdf.set_left_margin(left + 94)
            _table(pdf, shown[half:], header=("column", "role", "type"), col_widths=(40, 26, 20), width=86,
                   line_height=4.2)
            pdf.set_left_margin(left)
            pdf.set_x(left)
            bottom = max(bottom, pdf.get_y())
        pdf.set_y(bottom)
        if len(ds.columns) > len(shown):
            _text(pdf, f"... and {len(ds.columns) - len(shown)} more columns")
    if ds.problems:
        _text(pdf, "Problems found in the data:", style="B")
        for problem in ds.problems:
            _text(pdf, f"• {problem}")
    else:
        _text(pdf, "No problems were found in the data.")
    if context.skipped_rows:
        _text(pdf, f"{len(context.skipped_rows):,} bad row(s) were skipped when the file was read:", style="B")
        for line in context.skipped_rows[:50]:
            _text(pdf, f"• {line}")
        if len(context.skipped_rows) > 50:
            _text(pdf, f"... and {len(context.skipped_rows) - 50:,} more")

    _heading(pdf, "Model")
    if parts.model_rows and parts.loss_png:  # settings on the left, the loss curve beside them
        chart_w = 84.0
        chart_h = _image_height(parts.loss_png, chart_w)
        if pdf.get_y() + max(chart_h, 5.2 * len(parts.model_rows)) > pdf.h - pdf.b_margin:
            pdf.add_page()
        top = pdf.get_y()
        pdf.image(io.BytesIO(parts.loss_png), x=pdf.w - pdf.r_margin - chart_w, y=top + 1, w=chart_w)
        _kv(pdf, parts.model_rows, width=full - chart_w - 4)
        pdf.set_y(max(pdf.get_y(), top + chart_h + 2))
    elif parts.model_rows:
        _kv(pdf, parts.model_rows, width=full)
    else:
        _text(pdf, "No model information was given for this report.")

    _heading(pdf, "Threshold and scores")
    chart_w = 100.0  # the threshold beside the histogram it cuts
    chart_h = _image_height(parts.histogram_png, chart_w)
    if pdf.get_y() + chart_h > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y()
    pdf.image(io.BytesIO(parts.histogram_png), x=pdf.w - pdf.r_margin - chart_w, y=top, w=chart_w)
    _kv(pdf, parts.threshold_rows, width=full - chart_w - 4, key_width=34)
    pdf.set_y(max(pdf.get_y(), top + chart_h + 2))

    _heading(pdf, "Counts")
    _kv(pdf, counts_rows(parts.counts), width=100)
    if parts.metrics:
        _heading(pdf, "Detection quality")
        _text(pdf, f"Measured against {parts.metrics_source}.")
        _kv(pdf, metrics_rows(parts.metrics), width=100)
        if parts.roc_pr_png:
            _image(pdf, parts.roc_pr_png, width=150)

    _heading(pdf, "Rules in force")
    if context.rules:
        _text(pdf, "Records a rule matches are treated as normal: they are not flagged.")
        _table(pdf, rules_rows(context), header=("rule", "what it says", "records covered"),
               col_widths=(60, 90, 30), width=full)
    else:
        _text(pdf, "No rules: every record at or above the threshold is flagged.")

    confirmed = confirmed_rows(context)
    _heading(pdf, f"Confirmed anomalies ({len(confirmed)})")
    if confirmed:
        _table(pdf, confirmed, header=("record", "score", "note", "reason", "reviewer"),
               col_widths=(26, 18, 76, 36, 24), width=full)
    else:
        _text(pdf, "No record has been confirmed as an anomaly yet.")

    if not context.top_records:
        _heading(pdf, "Flagged records")
        _text(pdf, "No records above the threshold." if context.threshold is not None else "No records to show.")
    else:
        _heading(pdf, top_heading(context), keep_with_next=75)
    for i, (record, png) in enumerate(zip(context.top_records, parts.record_pngs, strict=False), start=1):
        _record(pdf, i, record, png)
    pdf.output(str(path))
