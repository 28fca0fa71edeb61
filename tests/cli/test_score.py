"""``python main.py score`` in a subprocess: chunked output identical to one-shot, progress and
schema notes on stderr, refusals in one line with nothing written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema
from tests.conftest import REPO_ROOT


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "entry": np.arange(1, n + 1),
        "amount": rng.lognormal(4, 0.5, n).round(2),
        "account": rng.choice(["A1", "A2", "A3"], n),
    })


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    schema = Schema(columns=[ColumnInfo("entry", Role.IDENTIFIER, "t"), ColumnInfo("amount", Role.NUMERIC, "t"),
                             ColumnInfo("account", Role.CATEGORICAL, "t")])
    model = AnomalyModel("ecod").fit(_frame(200, 0), schema)
    bundle = model.save(root / "model")
    data = _frame(120, 1)
    data.loc[2, "account"] = "ZZ9"
    data["memo"] = "x"
    src = root / "new.csv"
    data.to_csv(src, index=False)
    return root, bundle, src, model, data


def _score(*args):
    return subprocess.run([sys.executable, "main.py", "score", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_chunked_equals_one_shot(setup):
    root, bundle, src, model, data = setup
    chunked = _score(src, "--model", bundle, "--out", root / "chunked.csv", "--chunk-rows", "7")
    assert chunked.returncode == 0, chunked.stderr
    whole = _score(src, "--model", bundle, "--out", root / "whole.csv")
    assert whole.returncode == 0, whole.stderr
    assert (root / "chunked.csv").read_bytes() == (root / "whole.csv").read_bytes()
    out = pd.read_csv(root / "chunked.csv")
    np.testing.assert_allclose(out["score"].to_numpy(), model.score(data).scores, rtol=1e-12)
    assert out["key"].astype(str).tolist() == data["entry"].astype(str).tolist()
    err = chunked.stderr
    assert "scoring: 100.0%" in err and "scored 120 rows" in err
    assert "extra column(s) not in the model: memo" in err
    assert "'ZZ9'" in err and "<other>" in err
    assert "Traceback" not in err


def test_unfit_file_refused_in_one_line(setup):
    root, bundle, src, _, data = setup
    bad = root / "bad.csv"
    data.drop(columns=["amount"]).to_csv(bad, index=False)
    out = root / "never.csv"
    result = _score(bad, "--model", bundle, "--out", out)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "amount" in lines[0] and "bad.csv" in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists() and not list(root.glob(".never.csv*"))


def test_missing_model_refused(setup):
    root, _, src, _, _ = setup
    result = _score(src, "--model", root / "no-model", "--out", root / "x.csv")
    assert result.returncode != 0 and "no-model" in result.stderr and "Traceback" not in result.stderr


def test_project_threshold_is_carried_over(setup):
    from engine.project import Project, ThresholdSetting

    root, bundle, src, model, data = setup
    cut = float(np.quantile(model.score(data).scores, 0.75))
    Project(data_file=str(src), model_dir=str(bundle),
            threshold=ThresholdSetting(value=cut, method="manual")).save(root / "p.adproj")
    result = _score(src, "--model", bundle, "--out", root / "p.csv", "--project", root / "p.adproj")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(root / "p.csv")
    assert out["flagged"].tolist() == (out["score"] >= cut).tolist() and out["flagged"].sum() == 30
    assert "given by the analyst" in result.stderr


def test_project_rules_keep_matching_records_out_of_the_flagged(setup):
    from engine.project import Project, ThresholdSetting
    from engine.rules import Condition, Rule, set_project_rules

    root, bundle, src, model, data = setup
    scores = model.score(data).scores
    threshold = float(np.sort(scores)[-6])
    top = int(np.argmax(scores))
    rule = Rule("routine top", (Condition("account", "equals", str(data["account"].iloc[top])),
                                Condition("amount", "at_most", float(data["amount"].iloc[top]))))
    missing = Rule("vendor rule", (Condition("vendor", "equals", "V1"),))
    project = Project(data_file=str(src), threshold=ThresholdSetting(value=threshold, method="manual"))
    set_project_rules(project, [rule, missing])
    project.save(root / "case.adproj")
    result = _score(src, "--model", bundle, "--out", root / "ruled.csv", "--project", root / "case.adproj")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(root / "ruled.csv", keep_default_na=False)
    covered = (data["account"] == data["account"].iloc[top]) & (data["amount"] <= data["amount"].iloc[top])
    assert (out["rule"] == "routine top").tolist() == covered.tolist()
    assert not out.loc[covered.to_numpy(), "flagged"].any()
    assert out["flagged"].sum() == int(((scores >= threshold) & ~covered.to_numpy()).sum())
    err = result.stderr
    assert f"rule 'routine top' (normal when account = {data['account'].iloc[top]}" in err
    assert f"{int(covered.sum()):,} record(s) treated as normal" in err
    assert "the file lacks column(s) vendor" in err and "not flagged because a rule matched" in err

    # the report of that scores file lists the rule in force, what it says and the records it covered
    report = subprocess.run([sys.executable, "main.py", "report", str(root / "ruled.csv"), "--project",
                             str(root / "case.adproj"), "--out", str(root / "ruled.html")], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    html = (root / "ruled.html").read_text(encoding="utf-8")
    assert "Rules in force" in html and "routine top" in html
    assert f"<td>normal when account = {data['account'].iloc[top]} and amount" in html

    (root / "bad.adproj").write_text((root / "case.adproj").read_text().replace('"at_most"', '"exec"'))
    result = _score(src, "--model", bundle, "--out", root / "badrule.csv", "--project", root / "bad.adproj")
    assert result.returncode == 2 and "field 'op' is unknown: 'exec'" in result.stderr
    assert "Traceback" not in result.stderr and not (root / "badrule.csv").exists()
