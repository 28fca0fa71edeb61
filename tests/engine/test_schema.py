"""engine.schema: plain serialisable schema and overrides."""

from __future__ import annotations

import json

import pytest

from engine.errors import DataError
from engine.schema import ColumnInfo, Role, Schema, SchemaOverrides, UnknownColumnError


def _schema() -> Schema:
    return Schema(columns=[
        ColumnInfo("BELNR", Role.IDENTIFIER, "unique", dtype="int", n_distinct=100),
        ColumnInfo("WAERS", Role.CATEGORICAL, "codes", dtype="string", n_distinct=3, top_values=["EUR", "USD", "GBP"],
                   top_counts=[70, 20, 10]),
        ColumnInfo("DMBTR", Role.NUMERIC, "numbers", dtype="float", min=1.5, max=99.0, n_distinct=90),
        ColumnInfo("flag", Role.NUMERIC, "few codes", dtype="int", n_distinct=2, top_values=[1, 0], top_counts=[60, 40]),
        ColumnInfo("label", Role.LABEL, "named like a label", dtype="string", n_distinct=2,
                   top_values=["ok", "bad"], top_counts=[95, 5]),
    ], label_column="label", normal_value="ok", problems=["something"])


def test_schema_round_trips_through_json():
    schema = _schema()
    again = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    assert again.column("WAERS").top_counts == [70, 20, 10]


def test_column_info_ignores_unknown_keys_from_newer_files():
    d = _schema().columns[0].to_dict() | {"something_new": 1}
    assert ColumnInfo.from_dict(d).name == "BELNR"


def test_feature_columns_and_roles():
    schema = _schema()
    assert schema.feature_columns == ["WAERS", "DMBTR", "flag"]
    assert schema.identifier_column == "BELNR"
    assert schema.by_role(Role.LABEL) == ["label"]
    assert Role.DATETIME.is_feature and not Role.TEXT.is_feature and not Role.IDENTIFIER.is_feature
    with pytest.raises(KeyError):
        schema.column("nope")


def test_overrides_round_trip_and_apply():
    overrides = SchemaOverrides(roles={"WAERS": Role.IGNORED, "BELNR": Role.NUMERIC}, normal_value="bad")
    again = SchemaOverrides.from_dict(json.loads(json.dumps(overrides.to_dict())))
    assert again == overrides
    schema = again.apply(_schema())
    assert schema.column("WAERS").role is Role.IGNORED and schema.column("WAERS").reason == "set by the user"
    assert schema.feature_columns == ["BELNR", "DMBTR", "flag"]
    assert schema.label_column == "label" and schema.normal_value == "bad"
    assert schema.problems == ["something"]


def test_choosing_another_label_column_derives_its_normal_value():
    schema = SchemaOverrides(label_column="flag").apply(_schema())
    assert schema.label_column == "flag" and schema.column("flag").role is Role.LABEL
    assert schema.normal_value == "0"  # 0/1 column: 0 is normal
    assert schema.column("label").role is Role.IGNORED  # the former label is never a feature
    assert "flag" not in schema.feature_columns and "label" not in schema.feature_columns
    chosen = SchemaOverrides(label_column="WAERS").apply(_schema())
    assert chosen.normal_value == "EUR"  # most frequent value


def test_clearing_the_label():
    schema = SchemaOverrides(label_column="").apply(_schema())
    assert schema.label_column is None and schema.normal_value is None


def test_unknown_columns_are_a_data_error_and_a_key_error():
    for overrides in (SchemaOverrides(roles={"nope": Role.NUMERIC}), SchemaOverrides(label_column="nope")):
        with pytest.raises(UnknownColumnError) as info:
            overrides.apply(_schema())
        assert isinstance(info.value, DataError) and isinstance(info.value, KeyError)
        assert str(info.value) == "column 'nope': no such column in the data: nope"
