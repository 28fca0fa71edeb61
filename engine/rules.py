"""Rules from verdicts: "treat records like this as normal".

An analyst who has judged a flagged record normal often knows that every record like it is normal
too (this account with this posting key is a year-end accrual; this vendor's small payments are
routine). A :class:`Rule` says so on the columns that drove the record: a category value, a pair of
values, an amount at most (or at least) a limit; all of its conditions must hold. Records a rule
matches leave the flagged queue (they stay visible, and reports count them), the way Elastic ML's
custom rules skip a result "when actual < x".

Rules are plain data (column, operator, value), saved as JSON in the project: nothing in them is
code, nothing is evaluated. ``Rule.from_dict`` validates every field like engine.project validates a
project, naming the field that is wrong. Matching is vectorised with pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError, ModelFileError
from engine.features import as_text
from engine.schema import Role

OPERATORS = ("equals", "at_most", "at_least")
NUMERIC_OPERATORS = ("at_most", "at_least")
SYMBOLS = {"equals": "=", "at_most": "≤", "at_least": "≥"}
MAX_CONDITIONS = 8
MAX_TEXT = 1000
ACTIONS = ("normal",)
PROJECT_KEY = "rules"  # where a project keeps its rules: Project.extra["rules"]


class RuleError(AnomalyDeskError):
    """A rule that cannot be used: its message names the rule and the field."""


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # one of OPERATORS
    value: str | float  # text for ``equals``, a number for ``at_most``/``at_least``

    def describe(self) -> str:
        value = _number_text(self.value) if isinstance(self.value, float) else str(self.value)
        return f"{self.column} {SYMBOLS[self.op]} {value}"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows that satisfy the condition; none when the column is not in the frame."""
        if self.column not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        s = frame[self.column]
        if self.op == "equals":
            return as_text(s) == str(self.value)
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return x <= float(self.value) if self.op == "at_most" else x >= float(self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Rule:
    """Treat records matching every condition as normal."""

    name: str
    conditions: tuple[Condition, ...]
    action: str = "normal"
    note: str = ""
    author: str = ""
    created: str = ""  # ISO 8601
    source_key: str = ""  # the record it was proposed from

    def describe(self) -> str:
        return "normal when " + " and ".join(c.describe() for c in self.conditions)

    @property
    def columns(self) -> list[str]:
        return [c.column for c in self.conditions]

    def missing_columns(self, columns: Iterable[str]) -> list[str]:
        have = set(map(str, columns))
        return [c for c in self.columns if c not in have]

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.ones(len(frame), dtype=bool)
        for condition in self.conditions:
            out &= condition.mask(frame)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "conditions": [c.to_dict() for c in self.conditions],
                "note": self.note, "author": self.author, "created": self.created, "source_key": self.source_key}

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "rule") -> Rule:
        """A rule from its JSON form, refusing anything else with RuleError naming the field."""
        def fail(message: str):
            raise RuleError(f"{where}: {message}")

        if not isinstance(d, dict):
            fail(f"must be an object, not {type(d).__name__}")
        unknown = sorted(set(d) - {"name", "action", "conditions", "note", "author", "created", "source_key"})
        if unknown:
            fail(f"unknown field(s) {', '.join(repr(u) for u in unknown)}")

        def text(key: str, required: bool = False) -> str:
            value = d.get(key)
            if value is None:
                if required:
                    fail(f"field '{key}' is missing")
                return ""
            if not isinstance(value, str):
                fail(f"field '{key}' must be text, not {type(value).__name__}")
            if "\x00" in value or len(value) > MAX_TEXT:
                fail(f"field '{key}' is not a valid value")
            return value

        name = text("name", required=True)
        if not name.strip():
            fail("field 'name' is empty")
        action = text("action") or "normal"
        if action not in ACTIONS:
            fail(f"field 'action' is unknown: {action!r} (a rule can only treat records as {ACTIONS[0]})")
        raw = d.get("conditions")
        if not isinstance(raw, list) or not raw:
            fail("field 'conditions' must be a non-empty list")
        if len(raw) > MAX_CONDITIONS:
            fail(f"field 'conditions' has {len(raw)} conditions, at most {MAX_CONDITIONS} are allowed")
        conditions = tuple(_condition(c, f"{where}.conditions[{i}]") for i, c in enumerate(raw))
        return cls(name=name, conditions=conditions, action=action, note=text("note"), author=text("author"),
                   created=text("created"), source_key=text("source_key"))


def _condition(d: Any, where: str) -> Condition:
    def fail(message: str):
        raise RuleError(f"{where}: {message}")

    if not isinstance(d, dict):
        fail(f"must be an object, not {type(d).__name__}")
    unknown = sorted(set(d) - {"column", "op", "value"})
    if unknown:
        fail(f"unknown field(s) {', '.join(repr(u) for u in unknown)}")
    column, op, value = d.get("column"), d.get("op"), d.get("value")
    if not isinstance(column, str) or not column or "\x00" in column or len(column) > MAX_TEXT:
        fail("field 'column' must be a column name (text)")
    if op not in OPERATORS:
        fail(f"field 'op' is unknown: {op!r} (one of {', '.join(OPERATORS)})")
    if op in NUMERIC_OPERATORS:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            fail(f"field 'value' must be a finite number for '{op}', not {value!r}")
        return Condition(column, op, float(value))
    if not isinstance(value, str) or "\x00" in value or len(value) > MAX_TEXT:
        fail(f"field 'value' must be text for 'equals', not {type(value).__name__}")
    return Condition(column, op, value)


# ----------------------------------------------------------------------------------------------
# Lists of rules: matching, (de)serialisation, projects
# ----------------------------------------------------------------------------------------------
def matching_rule(rules: Sequence[Rule], frame: pd.DataFrame) -> np.ndarray:
    """Per row, the name of the first rule that matches it ("" for none), as an object array."""
    names = np.full(len(frame), "", dtype=object)
    free = np.ones(len(frame), dtype=bool)
    for rule in rules:
        hit = free & rule.mask(frame)
        names[hit] = rule.name
        free &= ~hit
    return names


def matches(rules: Sequence[Rule], frame: pd.DataFrame) -> np.ndarray:
    """Rows that any of ``rules`` treats as normal."""
    out = np.zeros(len(frame), dtype=bool)
    for rule in rules:
        out |= rule.mask(frame)
    return out


def rules_to_list(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in rules]


def rules_from_list(data: Any, *, source: str = "rules") -> list[Rule]:
    """Rules from their JSON form; names must be unique (a rule is reported by its name)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise RuleError(f"{source}: must be a list of rules, not {type(data).__name__}")
    rules = [Rule.from_dict(d, where=f"{source}[{i}]") for i, d in enumerate(data)]
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise RuleError(f"{source}[{i}]: field 'name' repeats the name of another rule: {rule.name!r}")
        seen.add(rule.name)
    return rules


def project_rules(project: Any) -> list[Rule]:
    """The rules a project keeps (``Project.extra["rules"]``); a broken list is a ModelFileError,
    like any other broken field of a project file."""
    extra = getattr(project, "extra", None) or {}
    try:
        return rules_from_list(extra.get(PROJECT_KEY), source=f"project field 'extra.{PROJECT_KEY}'")
    except RuleError as exc:
        raise ModelFileError(str(exc)) from None


def set_project_rules(project: Any, rules: Sequence[Rule]) -> None:
    project.extra = {**(getattr(project, "extra", None) or {}), PROJECT_KEY: rules_to_list(rules)}


# ----------------------------------------------------------------------------------------------
# Proposing a rule from a record
# ----------------------------------------------------------------------------------------------
def propose_rule(frame: pd.DataFrame, schema: Any, row: int, contributions: Sequence[float] | np.ndarray,
                 columns: Sequence[str], *, max_conditions: int = 2, key: str = "", author: str = "",
                 existing: Iterable[str] = ()) -> Rule:
    """A rule proposed from record ``row`` (position in ``frame``): one condition per column among its
    ``max_conditions`` largest contributions (``contributions`` aligned with ``columns``, as in a
    ScoreResult). A categorical (or other non-numeric) column gives "equals the record's value"; a
    numeric one gives "at most" a round limit just above the record's value when the value is high
    for the column (at least one just below it when low). Editable: it is plain data."""
    if not 0 <= row < len(frame):
        raise RuleError(f"no record at position {row} (the file has {len(frame)} rows)")
    shares = np.asarray(contributions, dtype=np.float64).reshape(-1)
    if len(shares) != len(columns):
        raise RuleError(f"{len(shares)} contributions for {len(columns)} columns")
    order = [int(j) for j in np.argsort(-np.nan_to_num(shares, nan=-np.inf), kind="stable")]
    conditions: list[Condition] = []
    for j in order:
        name = str(columns[j])
        if name not in frame.columns or len(conditions) >= max_conditions:
            continue
        condition = _condition_for(frame[name], _role(schema, name), row, name)
        if condition is not None:
            conditions.append(condition)
    if not conditions:
        raise RuleError("cannot propose a rule: none of the record's contributing columns has a usable value")
    from datetime import datetime, timezone

    base = "Normal: " + ", ".join(c.describe() for c in conditions)
    name, taken, n = base, set(existing), 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    return Rule(name=name[:MAX_TEXT], conditions=tuple(conditions), author=author, source_key=str(key),
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _role(schema: Any, name: str) -> str:
    try:
        role = schema.column(name).role
    except (AttributeError, KeyError, ValueError):
        return ""
    return str(getattr(role, "value", role))


def _condition_for(s: pd.Series, role: str, row: int, name: str) -> Condition | None:
    value = s.iloc[row]
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if role == Role.NUMERIC.value:
        x = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        if pd.isna(x) or not math.isfinite(float(x)):
            return None
        x = float(x)
        median = float(pd.to_numeric(s, errors="coerce").median())
        if math.isnan(median) or x >= median:
            return Condition(name, "at_most", _round_limit(x, up=True))
        return Condition(name, "at_least", _round_limit(x, up=False))
    if role == Role.DATETIME.value:
        return None  # a moment is not a kind of record; the analyst can add one by hand
    return Condition(name, "equals", str(as_text(s.iloc[row: row + 1])[0]))


def _round_limit(x: float, up: bool) -> float:
    """``x`` rounded away (up or down) to two significant figures: 12,345.67 -> 13,000 (up)."""
    if x == 0:
        return 0.0
    digits = int(math.floor(math.log10(abs(x)))) - 1
    step = 10.0 ** digits
    out = (math.ceil if up else math.floor)(x / step) * step
    return float(round(out, max(-digits, 0)))


def _number_text(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:,.6g}"
