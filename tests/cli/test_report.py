"""``python main.py report`` in a subprocess, from a real scores file with a project (verdicts,
threshold) and a model: every format opened and checked."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.feedback import VerdictStore
from engine.pipeline import AnomalyModel
from engine.project import Project, ThresholdSetting
from engine.schema import ColumnInfo, Role, Schema
from engine.scoring.files import score_file
from tests.conftest import REPO_ROOT

NOTE = "<script>alert(1)</script> posted on a Sunday"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(4)
    n = 300
    data = pd.DataFrame({"entry": np.arange(1, n + 1), "amount": rng.lognormal(4, 0.5, n).round(2),
                         "account": rng.choice(["A1", "A2", "=HYPERLINK(\"x\")"], n),
                         "label": ["0"] * n})
    data.loc[[10, 20], "amount"] = [9e5, 7e5]
    data.loc[[10, 20, 30], "label"] = "1"
    schema = Schema(columns=[ColumnInfo("entry", Role.IDENTIFIER, "t"), ColumnInfo("amount", Role.NUMERIC, "t"),
                             ColumnInfo("account", Role.CATEGORICAL, "t"), ColumnInfo("label", Role.LABEL, "t")],
                    label_column="label", normal_value="0")
    model = AnomalyModel("ecod").fit(data, schema)
    bundle = model.save(root / "model")
    src = root / "data.csv"
    data.to_csv(src, index=False)
    scores = root / "scores.csv"
    score_file(model, src, scores, chunk_rows=64)
    with VerdictStore(root / "verdicts.db", user="ana") as store:
        store.set_verdict("11", "anomaly", note=NOTE, reason="confirmed fraud")
        store.set_verdict("21", "normal", note="known year-end move", reason="known exception")
    threshold = float(np.quantile(model.score(data).scores, 0.9))
    project = Project(data_file=str(src), model_dir=str(bundle), verdict_db=str(root / "verdicts.db"),
                      threshold=ThresholdSetting(value=threshold, method="percentile", parameter=90.0))
    project.save(root / "review.adproj")
    return root, scores, bundle, root / "review.adproj", threshold


def _report(*args):
    return subprocess.run([sys.executable, "main.py", "report", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_pdf_and_html_reports(setup):
    pypdf = pytest.importorskip("pypdf")
    root, scores, _, project, _ = setup
    common = ["--project", project, "--title", "Ledger <Q3>", "--author", "A. Analyst",
              "--notes", "Top decile reviewed. <b>not bold</b>", "--label-column", "label", "--top", "3"]
    result = _report(scores, "--format", "pdf", "--out", root / "r.pdf", *common)
    assert result.returncode == 0, result.stderr
    reader = pypdf.PdfReader(root / "r.pdf")
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert len(reader.pages) >= 2
    for expected in ("Ledger <Q3>", "A. Analyst", "ecod", "percentile (from the project)", "confirmed anomalies",
                     "Top 3 flagged records", "posted on a Sunday", "known year-end move", "ROC AUC",
                     "the label column 'label'"):
        assert expected in text, expected
    result = _report(scores, "--out", root / "r.html", *common)
    assert result.returncode == 0, result.stderr
    html = (root / "r.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 5
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; posted on a Sunday" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_xlsx_and_csv_queue_with_verdicts(setup):
    openpyxl = pytest.importorskip("openpyxl")
    root, scores, bundle, project, threshold = setup
    result = _report(scores, "--project", project, "--model", bundle, "--format", "xlsx", "--out", root / "q.xlsx")
    assert result.returncode == 0, result.stderr
    wb = openpyxl.load_workbook(root / "q.xlsx")
    assert wb.sheetnames == ["Summary", "Queue", "Verdicts"]
    ws = wb["Queue"]
    header = [c.value for c in ws[1]]
    assert header[:9] == ["key", "severity", "score", "flagged", "verdict", "note", "reason", "reviewer", "time"]
    assert ws.freeze_panes == "B2" and ws.auto_filter.ref.startswith("A1:")
    rows = {str(ws.cell(r, 1).value): [c.value for c in ws[r]] for r in range(2, ws.max_row + 1)}
    assert rows["11"][4:8] == ["anomaly", NOTE, "confirmed fraud", "ana"]
    assert rows["21"][4] == "normal"
    flagged = sum(1 for r in rows.values() if r[3] is True)
    assert flagged == sum(1 for r in rows.values() if r[2] >= threshold)

    result = _report(scores, "--project", project, "--out", root / "q.csv")
    assert result.returncode == 0, result.stderr
    with open(root / "q.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 300 and table[0]["key"] in ("11", "21")
    assert all(not r["account"].startswith("=") for r in table)


def test_not_a_scores_file_is_refused(setup):
    root, _, _, _, _ = setup
    result = _report(root / "data.csv", "--out", root / "x.pdf")
    assert result.returncode != 0 and "not a scores file" in result.stderr and "Traceback" not in result.stderr
    assert not (root / "x.pdf").exists()


def test_report_only_reads_the_verdict_database(setup, monkeypatch, capsys):
    import engine.feedback
    from cli import main
    root, scores, _, project, _ = setup
    db = root / "verdicts.db"
    before = (db.read_bytes(), db.stat().st_mtime_ns)

    opening = engine.feedback.VerdictStore.__init__

    def read_only_store(self, *args, **kwargs):
        if not kwargs.get("read_only"):
            raise AssertionError("report opened the verdict store for writing")
        opening(self, *args, **kwargs)

    monkeypatch.setattr(engine.feedback.VerdictStore, "__init__", read_only_store)
    for fmt in ("xlsx", "pdf"):
        assert main(["report", str(scores), "--project", str(project), "--out", str(root / f"ro.{fmt}")]) == 0, \
            capsys.readouterr().err
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    monkeypatch.undo()
    assert _read_verdicts(db)["11"]["reason"] == "confirmed fraud"


def _read_verdicts(db: Path) -> dict[str, dict]:
    from engine.feedback import VerdictStore

    with VerdictStore(db, read_only=True, create=False) as store:
        return {k: {"verdict": r.verdict, "note": r.note, "reason": r.reason, "user": r.user, "time": r.time}
                for k, r in store.all().items()}


class _ProjectSession:
    """Stands in for engine.session.Session until it lands: opens a project the way a session would
    (data file, model, threshold, verdicts) and exposes the attributes reports read."""

    opened_read_only = None

    @classmethod
    def open(cls, path, read_only=False):
        from engine.feedback import default_keys
        from engine.io import read_csv
        from engine.model_reuse import carried_schema, load_model

        cls.opened_read_only = read_only
        project = Project.load(path)
        s = cls()
        s.data_file = project.data_file
        s.frame = read_csv(project.data_file).frame
        s.model = load_model(project.model_dir)
        s.schema = carried_schema(s.model, s.frame.columns)
        s.result = s.model.score(s.frame)
        s.keys = default_keys(s.frame, s.schema)
        s.scores, s.severity = s.result.scores, s.result.severity
        s.threshold, s.threshold_rule = project.threshold.value, project.threshold
        s.flagged = s.scores >= s.threshold
        s.verdicts = {k: dict(v) for k, v in _read_verdicts(Path(project.verdict_db)).items()}
        return s


def test_report_from_the_project_alone(setup, monkeypatch, capsys):
    import types

    openpyxl = pytest.importorskip("openpyxl")
    pypdf = pytest.importorskip("pypdf")
    from cli import main

    root, _, _, project, threshold = setup
    monkeypatch.setitem(sys.modules, "engine.session", types.SimpleNamespace(Session=_ProjectSession))
    for fmt in ("xlsx", "pdf"):
        code = main(["report", "--project", str(project), "--format", fmt, "--out", str(root / f"p.{fmt}"),
                     "--title", "Case ZQX0", "--author", "ana", "--notes", "ZQX9"])
        assert code == 0, capsys.readouterr().err
    assert _ProjectSession.opened_read_only is True
    wb = openpyxl.load_workbook(root / "p.xlsx")
    assert wb.sheetnames == ["Summary", "Queue", "Verdicts"]
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0] is not None}
    assert wb["Summary"]["A1"].value == "Case ZQX0" and summary["notes"] == "ZQX9"
    assert summary["threshold (score)"] == pytest.approx(threshold)
    assert summary["threshold rule"] == "percentile, parameter 90"
    verdicts = {r[0]: r for r in wb["Verdicts"].iter_rows(min_row=2, values_only=True)}
    assert verdicts["11"][1:5] == ("anomaly", NOTE, "confirmed fraud", "ana")
    assert verdicts["21"][2:4] == ("known year-end move", "known exception")
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(root / "p.pdf").pages).split())
    assert "Case ZQX0" in text and "Confirmed anomalies (1)" in text
    assert "posted on a Sunday" in text and "confirmed fraud" in text


def test_report_needs_a_scores_file_or_a_project(setup):
    root, _, _, _, _ = setup
    result = _report("--out", root / "x.pdf")
    assert result.returncode == 2 and "--project" in result.stderr
