"""Every export format is opened again and its content checked: CSV (round trip, formula injection),
XLSX (cells, formats, frozen panes, autofilter), HTML (embedded images, escaping), PDF (text, pages)."""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd
import pytest

from engine.errors import AnomalyDeskError
from engine.pipeline import AnomalyModel
from engine.reports import (
    ReportContext,
    build_report,
    export_queue,
    make_report_context,
    neutralise_frame,
    neutralise_text,
    queue_table,
)
from engine.reports import queue as queue_module
from engine.schema import ColumnInfo, Role, Schema

INJECTIONS = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1:A9)", "\tx=1", "\r=2"]
SCRIPT_NOTE = "<script>alert('x')</script> amount & date look odd"


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(3)
    n = 240
    frame = pd.DataFrame({
        "doc_id": [f"D{i:04d}" for i in range(n)],
        "amount": rng.lognormal(5, 0.5, n).round(2),
        "delta": rng.normal(0, 1, n).round(3),
        "account": rng.choice(["A100", "A200", "A300"], n),
        "memo": ["ok"] * n,
    })
    frame.loc[:5, "memo"] = INJECTIONS
    frame.loc[7, "delta"] = -1.0  # a genuine negative number must stay a number
    frame.loc[8, "amount"] = 90000.0  # the obvious anomaly
    schema = Schema(columns=[
        ColumnInfo("doc_id", Role.IDENTIFIER, "test"), ColumnInfo("amount", Role.NUMERIC, "test"),
        ColumnInfo("delta", Role.NUMERIC, "test"), ColumnInfo("account", Role.CATEGORICAL, "test"),
        ColumnInfo("memo", Role.TEXT, "test")])
    model = AnomalyModel("ecod").fit(frame, schema)
    result = model.score(frame)
    keys = frame["doc_id"].tolist()
    top = [keys[i] for i in np.argsort(-result.scores)[:3]]
    verdicts = {top[0]: {"verdict": "anomaly", "note": SCRIPT_NOTE, "reason": "amount", "user": "ana",
                         "time": "2026-11-26T10:00:00+00:00"},
                top[1]: {"verdict": "normal", "note": "year-end posting", "reason": "known", "user": "ben",
                         "time": "2026-11-26T10:05:00+00:00"},
                top[2]: {"verdict": "unsure", "note": "", "reason": "", "user": "ana", "time": ""}}
    threshold = float(np.quantile(result.scores, 0.95))
    return frame, schema, model, result, keys, verdicts, threshold


def test_neutralise_text_cases():
    for value in INJECTIONS:
        assert neutralise_text(value) == "'" + value
    assert neutralise_text("plain") == "plain"
    assert neutralise_text("a=b") == "a=b"
    assert neutralise_text(-1) == -1 and neutralise_text(-1.5) == -1.5  # numbers are not text
    frame = pd.DataFrame({"t": ["-1", "x"], "n": [-1, 2], "o": pd.Series([-1, "=x"], dtype=object)})
    out = neutralise_frame(frame)
    assert out["t"].tolist() == ["'-1", "x"]
    assert out["n"].tolist() == [-1, 2]
    assert out["o"].tolist() == [-1, "'=x"]


def test_queue_table_layout_and_order(scored):
    frame, schema, _, result, keys, verdicts, threshold = scored
    table = queue_table(frame, schema, result, keys, verdicts, threshold, top_k_features=2)
    assert list(table.columns[:13]) == ["key", "severity", "score", "flagged", "verdict", "note", "reason",
                                        "reviewer", "time", "feature_1", "share_1", "feature_2", "share_2"]
    assert list(table.columns[13:]) == list(frame.columns)
    assert (np.diff(table["score"].to_numpy()) <= 0).all()
    assert table["flagged"].sum() == (result.scores >= threshold).sum()
    assert table.loc[0, "verdict"] == "anomaly" and table.loc[0, "note"] == SCRIPT_NOTE
    assert set(table["feature_1"]) <= set(result.columns)
    assert (table["share_1"] >= table["share_2"]).all()


def test_csv_round_trip_neutralises_formulas(scored, tmp_path):
    frame, schema, _, result, keys, verdicts, threshold = scored
    out = export_queue(tmp_path / "queue.csv", "csv", frame, schema, result, keys, verdicts, threshold)
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(frame)
    by_id = {r["doc_id"]: r for r in rows}
    for i, value in enumerate(INJECTIONS):
        assert by_id[f"D{i:04d}"]["memo"] == "'" + value  # text: neutralised
    assert by_id["D0007"]["delta"] == "-1.0"  # a real negative number: unchanged
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for r in rows for cell in r.values() if cell)
    back = pd.read_csv(out)
    assert back["delta"].dtype.kind == "f" and back.loc[back["doc_id"] == "D0007", "delta"].item() == -1.0
    np.testing.assert_allclose(np.sort(back["score"].to_numpy()), np.sort(result.scores))
    assert not list(tmp_path.glob(".*.part"))


def test_xlsx_cells_formats_panes_filter(scored, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    frame, schema, _, result, keys, verdicts, threshold = scored
    out = export_queue(tmp_path / "queue.xlsx", None, frame, schema, result, keys, verdicts, threshold)
    ws = openpyxl.load_workbook(out).active
    header = [c.value for c in ws[1]]
    assert header[:5] == ["key", "severity", "score", "flagged", "verdict"]
    assert ws.freeze_panes == "B2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{len(frame) + 1}"
    assert ws.max_row == len(frame) + 1
    assert ws.column_dimensions["A"].width >= 8
    cols = {name: i + 1 for i, name in enumerate(header)}
    memo = {ws.cell(r, cols["doc_id"]).value: ws.cell(r, cols["memo"]) for r in range(2, ws.max_row + 1)}
    for i, value in enumerate(INJECTIONS):
        cell = memo[f"D{i:04d}"]
        # stored as text, never a formula (openpyxl leaves the OOXML escape of a CR as is)
        assert cell.data_type == "s" and cell.value.replace("_x000D_", "\r") == value
        assert cell.quotePrefix
    delta = {ws.cell(r, cols["doc_id"]).value: ws.cell(r, cols["delta"]).value for r in range(2, ws.max_row + 1)}
    assert delta["D0007"] == -1 and isinstance(delta["D0007"], (int, float))
    assert ws.cell(2, cols["verdict"]).value == "anomaly"
    assert ws.cell(2, cols["note"]).value == SCRIPT_NOTE
    assert ws.cell(2, cols["flagged"]).value is True
    assert ws.cell(2, cols["share_1"]).number_format == "0.0%"
    ranges = [str(r.sqref) for r in ws.conditional_formatting]
    sev = openpyxl.utils.get_column_letter(cols["severity"])
    assert f"{sev}2:{sev}{len(frame) + 1}" in ranges
    rules = [rule for cf in ws.conditional_formatting for rule in cf.rules if str(cf.sqref).startswith(sev)]
    assert {r.formula[0] for r in rules} == {"90", "70", "50"}
    assert all(r.dxf.fill is not None for r in rules)  # severity colouring


def test_xlsx_refuses_too_many_rows_and_leaves_nothing(scored, tmp_path, monkeypatch):
    frame, schema, _, result, keys, verdicts, threshold = scored
    monkeypatch.setattr(queue_module, "XLSX_MAX_ROWS", 10)
    with pytest.raises(AnomalyDeskError, match="CSV"):
        export_queue(tmp_path / "big.xlsx", "xlsx", frame, schema, result, keys, verdicts, threshold)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def context(scored):
    frame, schema, model, result, keys, verdicts, threshold = scored
    labels = np.zeros(len(frame), dtype=bool)
    labels[8] = labels[3] = True
    return make_report_context(frame, schema, result, keys=keys, verdicts=verdicts, threshold=threshold,
                               threshold_method="top 5% of scores", model=model, file="ledger <Q3>.csv",
                               title="Ledger review <Q3>", author="A. Analyst & co",
                               notes="Checked the top 5%.\n" + SCRIPT_NOTE, labels=labels, top_n=4)


def test_context_counts_and_metrics(context, scored):
    _, _, _, result, _, _, threshold = scored
    counts = context.counts()
    assert counts == {"scored": 240, "flagged": int((result.scores >= threshold).sum()), "reviewed": 3,
                      "confirmed": 1, "false_alarms": 1, "unsure": 1}
    metrics = context.metrics()
    assert 0.0 <= metrics["aucroc"] <= 1.0 and metrics["positives"] == 2
    assert context.model.detector == "ecod" and context.model.fit_seconds is not None
    assert len(context.top_records) == 4 and context.top_records[0].verdict == "anomaly"
    assert abs(sum(context.top_records[0].contributions.values()) - 1.0) < 0.05


def test_verdicts_alone_give_precision_recall(scored):
    frame, schema, _, result, keys, verdicts, threshold = scored
    ctx = make_report_context(frame, schema, result, keys=keys, verdicts=verdicts, threshold=threshold,
                              include_queue=False)
    target = ctx.evaluation_target()
    assert target is not None and "verdicts" in target[2] and len(target[0]) == 2  # unsure left out


def test_html_is_self_contained_and_escaped(context, tmp_path):
    out = build_report(tmp_path / "report.html", "html", context)
    text = out.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) >= 1 + 1 + 4  # histogram, ROC/PR, one chart per top record
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; amount &amp; date look odd" in text
    assert "Ledger review &lt;Q3&gt;" in text and "A. Analyst &amp; co" in text
    assert "ledger &lt;Q3&gt;.csv" in text
    assert "src=\"http" not in text and "href=" not in text  # nothing fetched from outside
    assert "Content-Security-Policy" in text


def test_pdf_text_and_pages(context, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    out = build_report(tmp_path / "report.pdf", None, context)
    reader = pypdf.PdfReader(out)
    assert len(reader.pages) >= 2
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = " ".join(text.split())
    for expected in ("Ledger review <Q3>", "A. Analyst & co", "Dataset", "Model", "Threshold and scores",
                     "Counts", "Detection quality", "Top 4 flagged records", "year-end posting",
                     "top 5% of scores", "ecod", "confirmed anomalies"):
        assert expected in flat, expected
    assert reader.metadata.title == "Ledger review <Q3>"
    assert sum(len(page.images) for page in reader.pages) >= 6


def test_csv_and_xlsx_reports_write_the_queue(context, tmp_path):
    out = build_report(tmp_path / "q.csv", "csv", context)
    assert pd.read_csv(out).shape[0] == 240
    with pytest.raises(AnomalyDeskError, match="format"):
        build_report(tmp_path / "q.doc", None, context)
    with pytest.raises(AnomalyDeskError, match="queue"):
        build_report(tmp_path / "q.csv", "csv", ReportContext())


def test_failed_export_keeps_previous_file(context, tmp_path, monkeypatch):
    import engine.reports.pdf as pdf_module

    target = tmp_path / "report.pdf"
    target.write_bytes(b"previous version")

    def broken(path, *args):
        path.write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pdf_module, "render_pdf", broken)
    with pytest.raises(RuntimeError):
        build_report(target, "pdf", context)
    assert target.read_bytes() == b"previous version"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_report_without_model_threshold_or_labels(tmp_path):
    ctx = ReportContext(title="bare", scores=np.array([0.1, 0.2, 0.3]))
    text = build_report(tmp_path / "bare.html", "html", ctx).read_text(encoding="utf-8")
    assert "No model information" in text and "none set" in text and "Detection quality" not in text
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(build_report(tmp_path / "bare.pdf", "pdf", ctx))
    assert "No model information" in reader.pages[0].extract_text()


def test_scores_file_back_to_a_report_without_model(scored, tmp_path):
    from engine.reports.scores_file import context_from_scores_file, read_scores_file
    from engine.streaming import score_csv

    frame, _, model, _, _, _, _ = scored
    src = tmp_path / "in.csv"
    frame.assign(doc_id=["-17"] + frame["doc_id"].tolist()[1:]).to_csv(src, index=False, lineterminator="\r\n")
    score_csv(model, src, tmp_path / "scores.csv", chunk_rows=100)
    sf = read_scores_file(tmp_path / "scores.csv")
    assert sf.keys[0] == "-17" and sf.table["key"].iloc[0] == "'-17"  # quoted in the file, not in the key
    assert list(sf.originals.columns) == list(frame.columns) and sf.top_k == 3
    verdicts = {"-17": {"verdict": "anomaly", "note": "negative id"}}
    ctx = context_from_scores_file(sf, verdicts=verdicts, top_n=3, title="from file")
    assert ctx.threshold == pytest.approx(sf.flagged_threshold())
    flagged = int((sf.scores >= ctx.threshold).sum())
    assert ctx.counts()["confirmed"] == 1 and len(ctx.top_records) == min(3, flagged)  # flagged records only
    shares = ctx.top_records[0].contributions
    assert len(shares) >= 3 and abs(sum(shares.values()) - 1.0) < 0.01  # top features + the rest
    assert ctx.queue.loc[ctx.queue["key"] == "-17", "verdict"].item() == "anomaly"
    text = build_report(tmp_path / "r.html", "html", ctx).read_text(encoding="utf-8")
    assert "from file" in text and f"Top {min(3, flagged)} flagged records" in text


# -- reports of a session: Summary/Queue/Verdicts workbook, confirmed anomalies, rules ----------------
class FakeSession:
    """The attributes of engine.session.Session that reports read."""

    def __init__(self, scored, rules=(), threshold=None, skipped_rows=()):
        frame, schema, model, result, keys, verdicts, default_threshold = scored
        self.frame, self.schema, self.model, self.result = frame, schema, model, result
        self.keys, self.scores, self.severity = list(keys), result.scores, result.severity
        self.threshold = default_threshold if threshold is None else threshold
        self.flagged = result.scores >= self.threshold
        self.threshold_rule = {"method": "percentile", "parameter": 95.0}
        self.verdicts = dict(verdicts)
        self.rules = list(rules)
        self.data_file = "/cases/ledger.csv"
        self.skipped_rows = list(skipped_rows)


def test_session_workbook_has_summary_queue_and_verdicts(scored, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from datetime import datetime

    from engine.reports import report_context_from_session

    session = FakeSession(scored, skipped_rows=[(17, "3 fields where the header has 5")])
    top = max(session.verdicts, key=lambda k: session.scores[session.keys.index(k)])
    session.verdicts[top] = {**session.verdicts[top], "reason": "=HYPERLINK(\"x\") fraud"}
    session.frame = session.frame.assign(**{"=SUM(A1:A9)": 1})  # a header that looks like a formula
    ctx = report_context_from_session(session, "Case ZQX0", "A. Analyst", "Checked the top 5% ZQX9")
    out = build_report(tmp_path / "r.xlsx", None, ctx)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Summary", "Queue", "Verdicts"]
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0] is not None}
    assert wb["Summary"]["A1"].value == "Case ZQX0"
    assert summary["author"] == "A. Analyst" and summary["notes"] == "Checked the top 5% ZQX9"
    assert summary["data file"] == "/cases/ledger.csv" and summary["model"] == "ecod"
    assert summary["threshold (score)"] == pytest.approx(session.threshold)
    assert summary["threshold rule"] == "percentile, parameter 95"
    assert (summary["verdict: anomaly"], summary["verdict: normal"], summary["verdict: unsure"]) == (1, 1, 1)
    assert summary["flagged (at or above the threshold, no rule)"] == int(session.flagged.sum())
    assert summary["bad rows skipped when reading"] == 1 and summary["skipped"] == "row 17: 3 fields where the header has 5"
    assert summary["rules in force"] == "none"
    verdicts = wb["Verdicts"]
    header = [c.value for c in verdicts[1]]
    assert header == ["key", "verdict", "note", "reason", "reviewer", "time", "score"]
    rows = {r[0].value: r for r in verdicts.iter_rows(min_row=2)}
    assert set(rows) == set(session.verdicts)
    assert rows[top][2].value == SCRIPT_NOTE and rows[top][4].value == "ana"
    assert rows[top][3].value == "=HYPERLINK(\"x\") fraud" and rows[top][3].quotePrefix  # text, not a formula
    assert isinstance(rows[top][5].value, datetime) and rows[top][5].value == datetime(2026, 11, 26, 10, 0)
    assert rows[top][5].is_date
    queue = wb["Queue"]
    names = [c.value for c in queue[1]]
    cell = queue.cell(1, names.index("=SUM(A1:A9)") + 1)
    assert cell.data_type == "s" and cell.quotePrefix  # headers are neutralised too
    for sheet in wb.worksheets:  # every formula-like cell of every sheet is quoted text
        for row in sheet.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith(("=", "+", "-", "@")):
                    assert c.data_type == "s" and c.quotePrefix, (sheet.title, c.coordinate, c.value)


def test_csv_headers_are_neutralised(scored, tmp_path):
    frame, schema, _, result, keys, verdicts, threshold = scored
    out = export_queue(tmp_path / "q.csv", "csv", frame.assign(**{"@cmd": 1}), schema, result, keys, verdicts,
                       threshold)
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "'@cmd" in header and "@cmd" not in header


def test_session_pdf_lists_confirmed_anomalies_rules_and_only_flagged_records(scored, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    from engine.reports import report_context_from_session
    from engine.rules import Condition, Rule

    frame, _, _, result, keys, verdicts, _ = scored
    order = np.argsort(-result.scores, kind="stable")
    threshold = float(result.scores[order[3]])  # four records at or above it
    covered = frame["doc_id"].iloc[order[1]]
    rule = Rule("year-end doc", (Condition("doc_id", "equals", covered),))
    session = FakeSession(scored, rules=[rule], threshold=threshold)
    ctx = report_context_from_session(session, "Case ZQX0", "A. Analyst", "", top_n=10)
    assert [r.key for r in ctx.top_records] == [keys[i] for i in order[[0, 2, 3]]]  # the rule's record left
    assert ctx.counts()["flagged"] == 3
    assert [(r.name, r.records) for r in ctx.rules] == [("year-end doc", 1)]
    assert ctx.queue.loc[ctx.queue["key"] == covered, ["flagged", "rule"]].values.tolist() == [[False, "year-end doc"]]
    out = build_report(tmp_path / "r.pdf", None, ctx)
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(out).pages).split())
    assert "Case ZQX0" in text and "Confirmed anomalies (1)" in text
    confirmed = next(k for k, v in verdicts.items() if v["verdict"] == "anomaly")
    assert "amount & date look odd" in text and confirmed in text
    assert "Rules in force" in text and "year-end doc" in text and f"doc_id = {covered}" in text
    assert "Top 3 flagged records" in text
    html = build_report(tmp_path / "r.html", None, ctx).read_text(encoding="utf-8")
    assert "Confirmed anomalies (1)" in html and "year-end doc" in html and "Top 3 flagged records" in html


def test_top_flagged_records_stop_at_the_threshold(scored):
    frame, schema, _, result, keys, verdicts, _ = scored
    top = float(np.sort(result.scores)[-2])
    ctx = make_report_context(frame, schema, result, keys=keys, verdicts=verdicts, threshold=top, top_n=10)
    assert len(ctx.top_records) == 2 and all(r.score >= top for r in ctx.top_records)
    ctx = make_report_context(frame, schema, result, keys=keys, threshold=float(result.scores.max()) + 1, top_n=10)
    assert ctx.top_records == []


def test_a_rule_covering_a_confirmed_anomaly_is_pointed_out(scored, tmp_path):
    from engine.reports.parts import rules_rows
    from engine.rules import Condition, Rule

    frame, schema, _, result, keys, verdicts, threshold = scored
    confirmed = next(k for k, v in verdicts.items() if v["verdict"] == "anomaly")
    rule = Rule("hides fraud", (Condition("doc_id", "equals", confirmed),))
    ctx = make_report_context(frame, schema, result, keys=keys, verdicts=verdicts, threshold=threshold, rules=[rule])
    assert [(r.records, r.confirmed) for r in ctx.rules] == [(1, 1)]
    assert rules_rows(ctx) == [("hides fraud", f"normal when doc_id = {confirmed}", "1 (1 confirmed anomaly!)")]
    labels = np.zeros(len(frame), dtype=bool)
    labels[keys.index(confirmed)] = True
    with_labels = make_report_context(frame, schema, result, keys=keys, threshold=threshold, rules=[rule],
                                      labels=labels)
    assert with_labels.metrics()["recall"] == 0.0  # the rule keeps the only anomaly out of the flagged
