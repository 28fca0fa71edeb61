"""``report --project`` attaches verdicts by identifier or by content, says what matched, what moved and
what no longer matches, and never writes to the verdict store (nor to a file that is not one)."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pandas as pd
import pytest

from cli import main as cli_main
from engine.feedback import VerdictStore, content_hashes
from engine.pipeline import AnomalyModel
from engine.project import Project, open_verdict_store
from engine.schema import ColumnInfo, Role, Schema


def _ledger(n=200, seed=5):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"doc": [f"D{i:04d}" for i in range(n)], "amount": rng.gamma(2.0, 50.0, n).round(2),
                         "account": rng.choice(["A", "B", "C"], n), "qty": rng.integers(1, 9, n)})


def _setup(root, with_identifier: bool):
    data = _ledger()
    if not with_identifier:
        data = data.drop(columns="doc")
    cols = [ColumnInfo("amount", Role.NUMERIC, "t"), ColumnInfo("account", Role.CATEGORICAL, "t"),
            ColumnInfo("qty", Role.NUMERIC, "t")]
    if with_identifier:
        cols.insert(0, ColumnInfo("doc", Role.IDENTIFIER, "t"))
    model = AnomalyModel("ecod").fit(data, Schema(columns=cols))
    model_dir = model.save(root / "model")
    src = root / "data.csv"
    data.to_csv(src, index=False)
    scores = root / "scores.csv"
    assert cli_main(["score", str(src), "--model", str(model_dir), "--out", str(scores)]) == 0
    keys = pd.read_csv(scores, dtype={"key": str})["key"].tolist()
    order = pd.read_csv(scores)
    project = Project(data_file=str(src), model_dir=str(model_dir), verdict_db=str(root / "v.sqlite"))
    hashes = content_hashes(data, model.schema_)
    reviewed = [3, 17, 50, 120, 199]
    with open_verdict_store(project, root / "p.adproj", user="ana") as store:
        for n, i in enumerate(reviewed):  # keys as the scores file (what the analyst saw) has them
            row = int(np.flatnonzero(order["amount"].to_numpy() == data["amount"].iloc[i])[0])
            store.set_verdict(keys[row], "anomaly" if n % 2 else "normal", note=f"row {i}",
                              content=hashes[i])
    project.save(root / "p.adproj")
    return data, model_dir, root / "p.adproj", reviewed


def _report_csv(root, scores, project, capsys, name="q.csv"):
    code = cli_main(["report", str(scores), "--project", str(project), "--out", str(root / name)])
    err = capsys.readouterr().err
    assert code == 0, err
    with open(root / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh)), err


def _score(root, frame, model_dir, name):
    path = root / f"{name}.csv"
    frame.to_csv(path, index=False)
    out = root / f"{name}.scores.csv"
    assert cli_main(["score", str(path), "--model", str(model_dir), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("with_identifier", [False, True], ids=["content keys", "identifier keys"])
def test_verdicts_follow_their_rows_when_rows_are_reordered_or_removed(tmp_path, capsys, with_identifier):
    data, model_dir, project, reviewed = _setup(tmp_path, with_identifier)
    rng = np.random.default_rng(9)
    removed = [i for i in rng.choice(len(data), 30, replace=False) if i not in reviewed][:10]
    copy = data.drop(index=removed).sample(frac=1.0, random_state=4).reset_index(drop=True)
    scores = _score(tmp_path, copy, model_dir, "copy")
    rows, err = _report_csv(tmp_path, scores, project, capsys)
    judged = {r["note"]: r for r in rows if r["verdict"]}
    assert sorted(judged) == sorted(f"row {i}" for i in reviewed)
    for i in reviewed:  # each verdict sits on the row with that content
        assert float(judged[f"row {i}"]["amount"]) == data["amount"].iloc[i]
    assert "5 verdicts, 5 attached" in err and "5 of 5 verdicts attached" in err
    if not with_identifier:
        assert "on rows that moved" in err


def test_same_identifiers_with_other_content_are_reported_not_attached(tmp_path, capsys):
    data, model_dir, project, reviewed = _setup(tmp_path, with_identifier=True)
    changed = data.copy()
    changed.loc[[17, 120], "amount"] = [123456.0, 654321.0]  # same document numbers, other contents
    scores = _score(tmp_path, changed.sample(frac=1.0, random_state=2), model_dir, "changed")
    rows, err = _report_csv(tmp_path, scores, project, capsys)
    judged = {r["key"] for r in rows if r["verdict"]}
    assert judged == {f"D{i:04d}" for i in (3, 50, 199)}
    assert "5 verdicts, 3 attached" in err and "2 not attached" in err and "other content" in err
    assert "D0017" in err and "D0120" in err
    html = tmp_path / "r.html"
    assert cli_main(["report", str(scores), "--project", str(project), "--out", str(html)]) == 0
    assert "other content" in html.read_text(encoding="utf-8")  # said in the report too


def _state(path):
    siblings = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
    return hashlib.sha256(path.read_bytes()).hexdigest(), siblings


def test_report_never_writes_to_the_store(tmp_path, capsys):
    data, model_dir, project, _ = _setup(tmp_path, with_identifier=True)
    db = tmp_path / "v.sqlite"
    before = _state(db)
    scores = _score(tmp_path, data, model_dir, "same")
    _report_csv(tmp_path, scores, project, capsys)
    assert _state(db) == before


def test_report_refuses_a_project_pointing_at_a_foreign_database(tmp_path, capsys):
    import sqlite3

    data, model_dir, project, _ = _setup(tmp_path, with_identifier=True)
    foreign = tmp_path / "accounts.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE ledger (id INTEGER, amount REAL)")
    conn.commit()
    conn.close()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    scores = _score(tmp_path, data, model_dir, "same")
    capsys.readouterr()
    for target in (foreign, empty):
        p = Project.load(project)
        p.verdict_db, p.verdict_store_id = str(target), None
        p.save(tmp_path / "evil.adproj")
        before = _state(target)
        code = cli_main(["report", str(scores), "--project", str(tmp_path / "evil.adproj"),
                         "--out", str(tmp_path / "r.csv")])
        err = capsys.readouterr().err
        assert code == 2 and "not an Anomaly Desk verdict store" in err and "untouched" in err, err
        assert _state(target) == before


def test_a_damaged_store_stops_report_and_can_be_salvaged(tmp_path, capsys):
    import os

    data, model_dir, project, _ = _setup(tmp_path, with_identifier=True)
    db = tmp_path / "v.sqlite"
    with VerdictStore(db, user="ana") as store:
        store.set_verdicts([f"D{i:04d}" for i in range(200)], "normal", note="y" * 200)
    raw = bytearray(db.read_bytes())
    middle = (len(raw) // 2) // 4096 * 4096
    raw[middle:middle + 4096] = os.urandom(4096)
    db.write_bytes(bytes(raw))
    scores = _score(tmp_path, data, model_dir, "same")
    capsys.readouterr()
    code = cli_main(["report", str(scores), "--project", str(project), "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "damaged" in err and "salvage-verdicts" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.csv").exists()
    assert cli_main(["salvage-verdicts", str(db), "--out", str(tmp_path)]) == 0
    assert "salvaged" in capsys.readouterr().err
    assert (tmp_path / "v.sqlite.salvaged-verdicts.csv").exists()


def test_a_scores_file_without_every_hashed_column_matches_by_identifier_only(tmp_path):
    """Hashing fewer columns than the verdicts were hashed over would call every row changed."""
    from engine.reports.scores_file import read_scores_file

    data, model_dir, project, _ = _setup(tmp_path, with_identifier=True)
    scores = _score(tmp_path, data, model_dir, "same")
    schema = AnomalyModel.load(model_dir).schema_
    assert read_scores_file(scores).content_hashes(schema) is not None
    pd.read_csv(scores, dtype=str, keep_default_na=False).drop(columns="account").to_csv(scores, index=False)
    trimmed = read_scores_file(scores)
    assert trimmed.content_hashes(schema) is None
    with VerdictStore(tmp_path / "v.sqlite", read_only=True) as store:
        result = store.attach_report(trimmed.keys, trimmed.content_hashes(schema))
    assert result.attached == 5 and not result.changed and result.unchecked == 5
