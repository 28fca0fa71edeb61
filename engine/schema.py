"""Column roles, the inferred schema, and the user's overrides: plain, JSON-serialisable objects
shared by the GUI, the CLI and saved models/projects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

from engine.errors import DataError


class UnknownColumnError(DataError, KeyError):
    """Overrides name a column the data does not have. A KeyError too, for callers that expect one."""

    def __str__(self) -> str:
        return Exception.__str__(self)  # not KeyError's quoted repr


class Role(str, Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    IDENTIFIER = "identifier"
    DATETIME = "datetime"
    LABEL = "label"
    TEXT = "text"  # free text: shown, never a feature
    IGNORED = "ignored"

    @property
    def is_feature(self) -> bool:
        return self in (Role.NUMERIC, Role.CATEGORICAL, Role.DATETIME)


@dataclass
class ColumnInfo:
    name: str
    role: Role
    reason: str
    dtype: str = ""
    missing_share: float = 0.0
    n_distinct: int = 0
    min: Any = None
    max: Any = None
    top_values: list[Any] = field(default_factory=list)  # most frequent values, most frequent first
    top_counts: list[int] = field(default_factory=list)  # how often each of top_values occurs

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["role"] = self.role.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnInfo:
        d = dict(d)
        d["role"] = Role(d["role"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Schema:
    columns: list[ColumnInfo]
    label_column: str | None = None
    normal_value: str | None = None  # label value meaning "normal", as a string
    problems: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnInfo:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def by_role(self, role: Role) -> list[str]:
        return [c.name for c in self.columns if c.role is role]

    @property
    def feature_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.role.is_feature and c.name != self.label_column]

    @property
    def identifier_column(self) -> str | None:
        ids = self.by_role(Role.IDENTIFIER)
        return ids[0] if ids else None

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns], "label_column": self.label_column,
                "normal_value": self.normal_value, "problems": list(self.problems)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        return cls(columns=[ColumnInfo.from_dict(c) for c in d["columns"]],
                   label_column=d.get("label_column"), normal_value=d.get("normal_value"),
                   problems=list(d.get("problems", [])))


@dataclass
class SchemaOverrides:
    """What the analyst changed: a role per column, the label column and its normal value.

    ``label_column=""`` means "no label column" (explicitly cleared); ``None`` keeps the inferred one.
    """

    roles: dict[str, Role] = field(default_factory=dict)
    label_column: str | None = None
    normal_value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"roles": {k: v.value for k, v in self.roles.items()},
                "label_column": self.label_column, "normal_value": self.normal_value}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SchemaOverrides:
        return cls(roles={k: Role(v) for k, v in d.get("roles", {}).items()},
                   label_column=d.get("label_column"), normal_value=d.get("normal_value"))

    def apply(self, schema: Schema) -> Schema:
        unknown = [n for n in self.roles if n not in schema.names]
        if self.label_column and self.label_column not in schema.names:
            unknown.append(self.label_column)
        if unknown:
            raise UnknownColumnError(f"no such column{'s' if len(unknown) > 1 else ''} in the data: "
                                     f"{', '.join(unknown)}", column=unknown[0])
        columns = []
        label = schema.label_column if self.label_column is None else (self.label_column or None)
        for c in schema.columns:
            if c.name in self.roles:
                c = replace(c, role=self.roles[c.name], reason="set by the user")
            elif c.role is Role.LABEL and c.name != label:
                c = replace(c, role=Role.IGNORED, reason="label candidate not chosen as the label")
            if c.name == label and c.role is not Role.LABEL:
                c = replace(c, role=Role.LABEL, reason="chosen as the label column by the user")
            columns.append(c)
        normal = self.normal_value if self.normal_value is not None else (
            schema.normal_value if label == schema.label_column else
            _normal_from_top_values(schema.column(label)) if label else None)
        return Schema(columns=columns, label_column=label, normal_value=normal,
                      problems=list(schema.problems))


def _normal_from_top_values(info: ColumnInfo) -> str | None:
    values = [str(v) for v in info.top_values]
    if info.n_distinct > 2:  # more than two values: not a 0/1 or true/false flag
        return values[0] if values else None
    return normal_value_of(values)


def normal_value_of(values_by_frequency: list[str]) -> str | None:
    """The label value meaning "normal", the one home of that rule: 0/false for 0/1 and true/false
    labels, else the most frequent value (None when no value is known)."""
    if not values_by_frequency:
        return None
    lowered = {v.strip().lower() for v in values_by_frequency}
    if lowered <= {"0", "1", "0.0", "1.0", "true", "false"}:
        zero = [v for v in values_by_frequency if v.strip().lower() in ("0", "0.0", "false")]
        return zero[0] if zero else ("False" if lowered == {"true"} else "0")
    return values_by_frequency[0]


def normal_label_set(normal_value: str | None) -> set[str]:
    """Every spelling of the normal value a label column may hold (0, 0.0, false...)."""
    normal = str(normal_value).strip() if normal_value is not None else "0"
    normal_set = {normal, normal.lower()}
    if normal.lower() in ("0", "0.0", "false"):
        normal_set |= {"0", "0.0", "false", "False", "FALSE"}
    elif normal.lower() in ("1", "1.0", "true"):
        normal_set |= {"1", "1.0", "true", "True", "TRUE"}
    return normal_set
