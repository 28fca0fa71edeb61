"""Rules from verdicts: proposed from a record's top contributing columns, plain JSON data validated
field by field, matched vectorised, applied when a project scores a file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.errors import ModelFileError
from engine.project import Project
from engine.rules import (
    Condition,
    Rule,
    RuleError,
    matches,
    matching_rule,
    project_rules,
    propose_rule,
    rules_from_list,
    rules_to_list,
    set_project_rules,
)
from engine.schema import ColumnInfo, Role, Schema

SCHEMA = Schema(columns=[ColumnInfo("doc", Role.IDENTIFIER, "t"), ColumnInfo("account", Role.CATEGORICAL, "t"),
                         ColumnInfo("key", Role.CATEGORICAL, "t"), ColumnInfo("amount", Role.NUMERIC, "t"),
                         ColumnInfo("posted", Role.DATETIME, "t")])


@pytest.fixture
def frame():
    return pd.DataFrame({"doc": ["D1", "D2", "D3", "D4", "D5"],
                         "account": ["A1", "A1", "A2", "A1", None],
                         "key": [40, 40, 40, 50, 40],
                         "amount": [12_345.67, 800.0, 100.0, 12_000.0, 5.0],
                         "posted": ["2026-01-01"] * 5})


def test_proposed_rule_uses_the_top_columns_and_matches_records_like_it(frame):
    columns = ["account", "key", "amount", "posted"]
    rule = propose_rule(frame, SCHEMA, 0, [0.3, 0.1, 0.5, 0.1], columns, key="D1")
    assert rule.conditions == (Condition("amount", "at_most", 13_000.0), Condition("account", "equals", "A1"))
    assert rule.describe() == "normal when amount ≤ 13,000 and account = A1" and rule.source_key == "D1"
    assert matches([rule], frame).tolist() == [True, True, False, True, False]
    # a pair of category values (integers read as the preprocessing reads them: 40 and 40.0 alike)
    pair = propose_rule(frame, SCHEMA, 0, [0.4, 0.4, 0.1, 0.1], columns)
    assert pair.conditions == (Condition("account", "equals", "A1"), Condition("key", "equals", "40"))
    assert matches([pair], frame.assign(key=frame["key"].astype(float))).tolist() == [True, True, False, False, False]
    # a value low for its column: at least a limit just below it
    low = propose_rule(frame, SCHEMA, 4, [0.0, 0.0, 1.0, 0.0], columns, max_conditions=1)
    assert low.conditions == (Condition("amount", "at_least", 5.0),)
    # a missing value or a date gives no condition; the next column does
    only = propose_rule(frame, SCHEMA, 4, [0.6, 0.0, 0.1, 0.9], columns, max_conditions=1)
    assert only.conditions == (Condition("amount", "at_least", 5.0),)
    with pytest.raises(RuleError, match="no record at position 9"):
        propose_rule(frame, SCHEMA, 9, [1, 0, 0, 0], columns)
    renamed = propose_rule(frame, SCHEMA, 0, [0.3, 0.1, 0.5, 0.1], columns, existing=[rule.name])
    assert renamed.name == rule.name + " (2)"


def test_first_matching_rule_is_named_and_missing_columns_match_nothing(frame):
    small = Rule("small", (Condition("amount", "at_most", 1000.0),))
    a1 = Rule("A1 40", (Condition("account", "equals", "A1"), Condition("key", "equals", "40")))
    ghost = Rule("ghost", (Condition("vendor", "equals", "V1"),))
    assert matching_rule([a1, small, ghost], frame).tolist() == ["A1 40", "A1 40", "small", "", "small"]
    assert ghost.missing_columns(frame.columns) == ["vendor"] and not matches([ghost], frame).any()
    text = frame.assign(amount=["12345.67", "800", "n/a", "", "5"])  # numbers kept as text: parsed, bad ones never match
    assert matches([small], text).tolist() == [False, True, False, False, True]


def test_round_trip_through_json_and_a_project(frame, tmp_path):
    rules = [Rule("A1 small", (Condition("account", "equals", "A1"), Condition("amount", "at_most", 900.0)),
                  note="year-end accruals", author="ana", created="2026-12-01T10:00:00+00:00", source_key="D2")]
    assert rules_from_list(json.loads(json.dumps(rules_to_list(rules)))) == rules
    project = Project(data_file=str(tmp_path / "ledger.csv"))
    set_project_rules(project, rules)
    project.save(tmp_path / "case.adproj")
    assert project_rules(Project.load(tmp_path / "case.adproj")) == rules


@pytest.mark.parametrize("bad, message", [
    ({"conditions": [{"column": "a", "op": "equals", "value": "x"}]}, r"rules\[0\]: field 'name' is missing"),
    ({"name": "r", "conditions": []}, r"rules\[0\]: field 'conditions' must be a non-empty list"),
    ({"name": "r", "conditions": [{"column": "a", "op": "eval", "value": "x"}]},
     r"rules\[0\]\.conditions\[0\]: field 'op' is unknown: 'eval'"),
    ({"name": "r", "conditions": [{"column": "a", "op": "at_most", "value": "1e3"}]},
     r"rules\[0\]\.conditions\[0\]: field 'value' must be a finite number"),
    ({"name": "r", "conditions": [{"column": "a", "op": "at_most", "value": True}]}, r"field 'value'"),
    ({"name": "r", "conditions": [{"column": "", "op": "equals", "value": "x"}]}, r"field 'column'"),
    ({"name": "r", "conditions": [{"column": "a", "op": "equals", "value": 3}]}, r"must be text for 'equals'"),
    ({"name": "r", "action": "delete", "conditions": [{"column": "a", "op": "equals", "value": "x"}]},
     r"field 'action' is unknown"),
    ({"name": "r", "code": "import os", "conditions": [{"column": "a", "op": "equals", "value": "x"}]},
     r"unknown field\(s\) 'code'"),
    ("rule", r"rules\[0\]: must be an object"),
])
def test_invalid_rules_are_refused_naming_the_field(bad, message):
    with pytest.raises(RuleError, match=message):
        rules_from_list([bad])


def test_duplicate_names_and_a_broken_project_list(tmp_path):
    rule = {"name": "r", "conditions": [{"column": "a", "op": "equals", "value": "x"}]}
    with pytest.raises(RuleError, match=r"rules\[1\]: field 'name' repeats"):
        rules_from_list([rule, rule])
    project = Project(data_file="x.csv", extra={"rules": [{"name": "r", "conditions": "all"}]})
    with pytest.raises(ModelFileError, match=r"extra.rules'\[0\]: field 'conditions'"):
        project_rules(project)


def test_rules_in_a_scored_file(tmp_path):
    from engine.pipeline import AnomalyModel
    from engine.streaming import score_csv

    rng = np.random.default_rng(0)
    n = 200
    data = pd.DataFrame({"doc": np.arange(n), "account": rng.choice(["A1", "A2"], n),
                         "amount": rng.lognormal(4, 0.4, n).round(2)})
    data.loc[[5, 6], ["account", "amount"]] = [["A1", 5e4], ["A2", 6e4]]
    schema = Schema(columns=[ColumnInfo("doc", Role.IDENTIFIER, "t"), ColumnInfo("account", Role.CATEGORICAL, "t"),
                             ColumnInfo("amount", Role.NUMERIC, "t")])
    model = AnomalyModel("ecod").fit(data, schema)
    src = tmp_path / "data.csv"
    data.to_csv(src, index=False)
    threshold = float(np.sort(model.score(data).scores)[-5])
    rule = Rule("A1 big", (Condition("account", "equals", "A1"), Condition("amount", "at_least", 1e4)))
    summary = score_csv(model, src, tmp_path / "s.csv", threshold=threshold, rules=[rule], chunk_rows=64)
    out = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert list(out.columns[:5]) == ["key", "score", "severity", "flagged", "rule"]
    row = out.loc[out["key"] == 5].iloc[0]
    assert row["rule"] == "A1 big" and row["flagged"] in (False, "False") and row["score"] >= threshold
    assert summary.by_rule == {"A1 big": 1} and summary.above_by_rule == 1 and summary.flagged == 4
