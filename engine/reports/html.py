"""Self-contained HTML report: one file, images embedded as base64 PNG, every text escaped, no
scripts (a Content-Security-Policy forbids them even if something slipped through)."""

from __future__ import annotations

import base64
from html import escape

from engine.reports import parts as rp
from engine.reports.context import ReportContext

STYLE = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;max-width:60rem;margin:2rem auto;padding:0 1rem}
h1{color:#2F5D8A;margin-bottom:.2rem}h2{border-bottom:2px solid #2F5D8A;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;
vertical-align:top}th{background:#DDE3EA}.meta{color:#555}.notes{background:#F6F8FA;padding:.5rem 1rem;
border-left:4px solid #2F5D8A;white-space:pre-wrap}.record{border:1px solid #ddd;padding:.5rem 1rem;margin:1rem 0;
page-break-inside:avoid}.verdict-anomaly{color:#9C0006;font-weight:bold}.verdict-normal{color:#006100;
font-weight:bold}img{max-width:100%}.problems li{color:#8a4b00}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(rows, header=None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _kv(rows) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows) + "</table>"


def render_html(context: ReportContext, parts: rp.ReportParts) -> str:
    ds = context.dataset
    h: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(context.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(context.title)}</h1>",
        f'<p class="meta">{escape(context.author or "author not given")} · {escape(context.created)}</p>',
    ]
    if context.notes:
        h.append(f'<div class="notes">{escape(context.notes)}</div>')
    h.append("<h2>Dataset</h2>")
    h.append(_kv([("file", ds.file or "not recorded"), ("rows", f"{ds.rows:,}"), ("columns", str(len(ds.columns)))]))
    if ds.columns:
        h.append(_table(ds.columns, header=("column", "role", "type")))
    if ds.problems:
        h.append("<p>Problems found in the data:</p><ul class=\"problems\">"
                 + "".join(f"<li>{escape(p)}</li>" for p in ds.problems) + "</ul>")
    else:
        h.append("<p>No problems were found in the data.</p>")
    if context.skipped_rows:
        h.append(f"<p>{len(context.skipped_rows):,} bad row(s) were skipped when the file was read:</p><ul>"
                 + "".join(f"<li>{escape(r)}</li>" for r in context.skipped_rows[:200]) + "</ul>")
    h.append("<h2>Model</h2>")
    if parts.model_rows:
        h.append(_kv(parts.model_rows))
        if parts.loss_png:
            h.append(_img(parts.loss_png, "training loss per epoch"))
    else:
        h.append("<p>No model information was given for this report.</p>")
    h.append("<h2>Threshold and scores</h2>")
    h.append(_kv(parts.threshold_rows))
    h.append(_img(parts.histogram_png, "score histogram with the threshold"))
    h.append("<h2>Counts</h2>")
    h.append(_kv(rp.counts_rows(parts.counts)))
    if parts.metrics:
        h.append(f"<h2>Detection quality</h2><p>Measured against {escape(parts.metrics_source)}.</p>")
        h.append(_kv(rp.metrics_rows(parts.metrics)))
        if parts.roc_pr_png:
            h.append(_img(parts.roc_pr_png, "ROC and precision-recall curves"))
    h.append("<h2>Rules in force</h2>")
    if context.rules:
        h.append("<p>Records a rule matches are treated as normal: they are not flagged.</p>")
        h.append(_table(rp.rules_rows(context), header=("rule", "what it says", "records covered")))
    else:
        h.append("<p>No rules: every record at or above the threshold is flagged.</p>")
    confirmed = rp.confirmed_rows(context)
    h.append(f"<h2>Confirmed anomalies ({len(confirmed)})</h2>")
    h.append(_table(confirmed, header=("record", "score", "note", "reason", "reviewer")) if confirmed
             else "<p>No record has been confirmed as an anomaly yet.</p>")
    empty = "No records above the threshold." if context.threshold is not None else "No records to show."
    h.append(f"<h2>{escape(rp.top_heading(context))}</h2>" + ("" if context.top_records else f"<p>{empty}</p>"))
    for i, (record, png) in enumerate(zip(context.top_records, parts.record_pngs, strict=False), start=1):
        verdict = record.verdict or "not reviewed"
        css = f"verdict-{escape(record.verdict)}" if record.verdict in ("anomaly", "normal") else ""
        h.append('<div class="record">')
        h.append(f"<h3>{i}. record {escape(record.key)}: score {escape(rp.fmt_value(record.score))}, "
                 f"severity {record.severity:.1f}</h3>")
        h.append(f'<p>Verdict: <span class="{css}">{escape(verdict)}</span>'
                 + (f" · reason: {escape(record.reason)}" if record.reason else "")
                 + (f" · by {escape(record.reviewer)}" if record.reviewer else "") + "</p>")
        if record.note:
            h.append(f'<div class="notes">{escape(record.note)}</div>')
        header, rows = rp.top_values(record)
        h.append(_table(rows, header=header))
        h.append(_img(png, f"feature contributions of record {record.key}"))
        h.append("</div>")
    h.append("</body></html>")
    return "\n".join(h)
