"""``python main.py report`` in a subprocess, from a real scores file with a project (verdicts,
threshold) and a model: every format opened and checked."""

from __future__ import annotations

import csv
import subprocess
import sys

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
    ws = openpyxl.load_workbook(root / "q.xlsx").active
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
