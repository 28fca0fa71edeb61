"""engine.io: reading, dialect detection, conversions, chunked reading, schema inference, labels."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from engine import io as engine_io
from engine.errors import DataError
from engine.schema import Role, SchemaOverrides


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def _ledger_text(n: int = 60) -> str:
    rows = "".join(f"{100000 + i},{'EUR' if i % 3 else 'USD'},B{i % 7:03d},{(i * 37.13) % 900 + 1:.2f},"
                   f"{'global' if i == 13 else 'local' if i == 29 else 'regular'}\n" for i in range(n))
    return "BELNR,WAERS,BUKRS,DMBTR,label\n" + rows


# ------------------------------------------------------------------------------------------ reading

def test_benchmark_files_read_like_pandas(benchmark_data):
    for path in sorted(benchmark_data.glob("*.csv")):
        loaded = engine_io.read_csv(path)
        expected = pd.read_csv(path)
        assert list(loaded.frame.columns) == list(expected.columns)
        assert loaded.frame.shape == expected.shape
        np.testing.assert_allclose(loaded.frame.to_numpy(dtype=float), expected.to_numpy(dtype=float))
        assert loaded.problems == []


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_dialect_detection(tmp_path, delimiter, encoding):
    text = f"name{delimiter}amount{delimiter}city\n" + "".join(
        f"Zoë {i}{delimiter}{i}.25{delimiter}{'Köln' if i % 2 else 'Genève'}\n" for i in range(25))
    loaded = engine_io.read_csv(_write(tmp_path, "d.csv", text, encoding))
    assert loaded.delimiter == delimiter
    assert loaded.encoding == encoding
    assert list(loaded.frame.columns) == ["name", "amount", "city"]
    assert loaded.frame["city"].iloc[0] == "Genève" and loaded.frame["name"].iloc[0] == "Zoë 0"
    assert loaded.frame["amount"].iloc[3] == pytest.approx(3.25)


def test_decimal_commas_with_thousands_dots(tmp_path):
    text = "id;amount\n" + "".join(f"{i};{i}.{i % 10}00,{i % 97:02d}\n" for i in range(1, 30))
    loaded = engine_io.read_csv(_write(tmp_path, "eu.csv", text))
    assert loaded.column_plan["amount"] == "float:decimal_comma"
    assert loaded.frame["amount"].iloc[11] == pytest.approx(12200.12)


def test_gzip_and_zip_read_the_same(tmp_path):
    text = _ledger_text()
    plain = engine_io.read_csv(_write(tmp_path, "a.csv", text))
    packed = engine_io.read_csv(_write(tmp_path, "a.csv.gz", gzip.compress(text.encode())))
    assert packed.compression == "gzip"
    pd.testing.assert_frame_equal(plain.frame, packed.frame)


def test_row_numbers_count_blank_lines(tmp_path):
    loaded = engine_io.read_csv(_write(tmp_path, "b.csv", "a,b\n1,2\n\n3,4\n\n\n5,x\n6,7\n" + "8,9\n" * 20))
    assert [loaded.row_number(i) for i in range(4)] == [2, 4, 7, 8]
    assert any("row 7" in p and "'b'" in p for p in loaded.problems)


def test_text_in_numeric_column_names_count_and_first_rows(tmp_path):
    text = "id,amount\n" + "".join(f"{i},{'?' if i % 10 == 5 else i}\n" for i in range(100))
    loaded = engine_io.read_csv(_write(tmp_path, "t.csv", text))
    assert loaded.frame["amount"].isna().sum() == 10
    [problem] = loaded.problems
    assert problem.startswith("column 'amount': 10 values are not numbers (rows 7, 17, 27, 37, 47, ...")
    assert "treated as missing" in problem


def test_unusable_file_error_carries_file_row_column(tmp_path):
    path = _write(tmp_path, "dup.csv", "a,b,a\n1,2,3\n")
    with pytest.raises(DataError) as info:
        engine_io.read_csv(path)
    assert (info.value.file, info.value.row, info.value.column) == (str(path), 1, "a")


# ------------------------------------------------------------------------------------------ chunks

def _chunk_cases(tmp_path):
    ledger = _ledger_text(1000)
    yield "plain", _write(tmp_path, "l.csv", ledger)
    yield "gzip", _write(tmp_path, "l.csv.gz", gzip.compress(ledger.encode()))
    yield "bom-semicolon", _write(tmp_path, "s.csv", b"\xef\xbb\xbf" + ledger.replace(",", ";").encode())
    euro = "id;amount;city\n" + "".join(f"{i};{i},5;{'Köln' if i % 2 else 'Genève'}\n" for i in range(700))
    yield "cp1252-decimal-comma", _write(tmp_path, "e.csv", euro, "cp1252")
    dates = "id,when,n\n" + "".join(f"{i},{i % 28 + 1:02d}.03.2024,{'x' if i == 650 else i}\n" for i in range(700))
    yield "dates-and-text", _write(tmp_path, "d.csv", dates)


def test_chunks_match_a_full_read(tmp_path):
    for name, path in _chunk_cases(tmp_path):
        loaded = engine_io.read_csv(path)
        for like in (None, loaded):
            chunks = list(engine_io.iter_csv_chunks(path, chunk_rows=256, like=like))
            assert all(len(c) == 256 for c in chunks[:-1]), name
            joined = pd.concat(chunks)
            assert joined.index.equals(pd.RangeIndex(len(loaded.frame))), name
            pd.testing.assert_frame_equal(joined, loaded.frame, check_dtype=False, obj=name)


def test_chunks_map_columns_by_name_not_position(tmp_path):
    train = engine_io.read_csv(_write(tmp_path, "train.csv", "id,amount,when\n1,2.5,01.02.2024\n2,3.5,02.02.2024\n"))
    path = _write(tmp_path, "score.csv", "when;extra;amount;id\n03.02.2024;x;4,5;3\n04.02.2024;y;5,5;4\n")
    [frame] = list(engine_io.iter_csv_chunks(path, like=train))
    assert list(frame.columns) == ["when", "extra", "amount", "id"]
    assert frame["amount"].tolist() == [4.5, 5.5] and frame["id"].tolist() == [3, 4]
    assert frame["when"].iloc[0] == pd.Timestamp("2024-02-03")


def test_codes_with_leading_zeros_stay_text(tmp_path):
    text = "HKONT,amount\n" + "".join(f"{'0040000' if i % 2 else '0051000'},{i}.5\n" for i in range(30))
    loaded, schema = engine_io.load(_write(tmp_path, "codes.csv", text))
    assert loaded.frame["HKONT"].iloc[0] == "0051000"
    assert schema.column("HKONT").role is Role.CATEGORICAL


def test_chunks_coerce_text_appearing_late_in_a_numeric_column(tmp_path):
    text = "id,amount\n" + "".join(f"{i},{i}.5\n" for i in range(3000)) + "3000,oops\n3001,inf\n"
    path = _write(tmp_path, "late.csv", text)
    head = engine_io.read_csv(_write(tmp_path, "head.csv", "id,amount\n1,2.5\n2,3.5\n"))
    frames = list(engine_io.iter_csv_chunks(path, chunk_rows=1000, like=head))
    last = frames[-1]
    assert last["amount"].isna().tolist()[-2:] == [True, True]
    assert last.index[-1] == 3001


def test_chunks_of_a_bad_file_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        list(engine_io.iter_csv_chunks(tmp_path / "none.csv"))
    blob = gzip.compress(_ledger_text(5000).encode())
    path = _write(tmp_path, "cut.csv.gz", blob[: len(blob) // 2])
    with pytest.raises(DataError, match="gzip") as info:
        list(engine_io.iter_csv_chunks(path, chunk_rows=100))
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------ schema

def test_ledger_roles_and_label(tmp_path):
    loaded, schema = engine_io.load(_write(tmp_path, "l.csv", _ledger_text()))
    roles = {c.name: c.role for c in schema.columns}
    assert roles == {"BELNR": Role.IDENTIFIER, "WAERS": Role.CATEGORICAL, "BUKRS": Role.CATEGORICAL,
                     "DMBTR": Role.NUMERIC, "label": Role.LABEL}
    assert schema.label_column == "label" and schema.normal_value == "regular"
    assert schema.feature_columns == ["WAERS", "BUKRS", "DMBTR"]
    waers = schema.column("WAERS")
    assert waers.n_distinct == 2 and waers.top_values == ["EUR", "USD"] and waers.top_counts == [40, 20]
    dmbtr = schema.column("DMBTR")
    assert dmbtr.min == pytest.approx(loaded.frame["DMBTR"].min()) and dmbtr.missing_share == 0.0
    json.dumps(schema.to_dict())  # plain JSON


def test_label_preference_and_target_like_columns_are_not_features():
    frame = pd.DataFrame({"x": np.arange(40) * 1.5, "class": np.arange(40) % 3, "label": np.arange(40) % 2,
                          "heartbeat_class": np.arange(40) % 5, "target_amount": np.arange(40) * 2.0})
    schema = engine_io.infer_schema(frame)
    assert schema.label_column == "label"
    for name in ("class", "heartbeat_class", "target_amount"):
        info = schema.column(name)
        assert info.role is Role.IGNORED and "leak" in info.reason
    assert schema.feature_columns == ["x"]


def test_label_by_name_token_when_no_exact_name():
    frame = pd.DataFrame({"x": np.arange(30) * 1.5, "fraud_flag": ["Y" if i == 4 else "N" for i in range(30)]})
    schema = engine_io.infer_schema(frame)
    assert schema.label_column == "fraud_flag" and schema.normal_value == "N"


def test_label_with_many_values_is_not_a_label():
    frame = pd.DataFrame({"x": np.arange(100) * 1.0, "target": np.arange(100) * 0.37})
    schema = engine_io.infer_schema(frame)
    assert schema.label_column is None
    assert schema.column("target").role is Role.NUMERIC


@pytest.mark.parametrize(("values", "normal"), [
    ([0, 1, 0, 0], "0"), ([1, 0, 1, 1], "0"), ([True, False, False], "False"), (["yes", "no", "no"], "no"),
    ([0.0, 1.0, 0.0], "0.0"), (["regular", "global", "regular", "local"], "regular"), ([1, 1, 1], "0"),
])
def test_default_normal_value(values, normal):
    frame = pd.DataFrame({"v": np.arange(len(values)), "label": values})
    schema = engine_io.infer_schema(frame)
    assert schema.normal_value == normal


def test_label_vector_and_values():
    frame = pd.DataFrame({"label": ["regular", "global", None, "local", "regular"]})
    schema = engine_io.infer_schema(frame)
    assert engine_io.label_vector(frame, schema).tolist() == [False, True, False, True, False]
    assert engine_io.label_values(frame, schema).tolist() == ["regular", "global", None, "local", "regular"]
    numeric = pd.DataFrame({"label": [0.0, 1.0, 0.0, np.nan]})
    assert engine_io.label_vector(numeric, engine_io.infer_schema(numeric)).tolist() == [False, True, False, False]
    flags = pd.DataFrame({"is_fraud": pd.array([False, True, None], dtype="boolean")})
    assert engine_io.label_vector(flags, engine_io.infer_schema(flags)).tolist() == [False, True, False]


def test_label_vector_without_label_column_is_a_data_error():
    frame = pd.DataFrame({"x": [1, 2]})
    with pytest.raises(DataError, match="no label column"):
        engine_io.label_vector(frame, engine_io.infer_schema(frame))


@pytest.mark.parametrize(("values", "role"), [
    (list(range(1000, 1040)), Role.IDENTIFIER),  # unique whole numbers: a record number
    ([i % 4 for i in range(40)], Role.NUMERIC),  # few integer codes stay numeric
    ([f"C{i % 4}" for i in range(40)], Role.CATEGORICAL),
    ([f"DOC-{i:05d}" for i in range(40)], Role.IDENTIFIER),
    ([f"the customer called about invoice {i} and asked for a refund" for i in range(40)], Role.TEXT),
    ([None] * 40, Role.IGNORED),
    (["same"] * 40, Role.IGNORED),
    (list(pd.date_range("2024-01-01", periods=40, freq="h")), Role.DATETIME),
])
def test_roles(values, role):
    frame = pd.DataFrame({"col": values, "amount": np.linspace(0, 1, 40)})
    info = engine_io.infer_schema(frame).column("col")
    assert info.role is role, info.reason
    assert info.reason


def test_small_file_id_needs_an_id_name():
    frame = pd.DataFrame({"customer_id": [5, 9, 2], "amount": [1, 7, 3]})
    schema = engine_io.infer_schema(frame)
    assert schema.column("customer_id").role is Role.IDENTIFIER
    assert schema.column("amount").role is Role.NUMERIC


def test_dates_in_local_formats(tmp_path):
    text = "id,booked,us,amount\n" + "".join(
        f"{i},{i % 28 + 1:02d}.0{i % 9 + 1}.2024,{i % 9 + 1}/{i % 28 + 1}/2024,{i}\n" for i in range(40))
    loaded, schema = engine_io.load(_write(tmp_path, "dates.csv", text))
    assert schema.column("booked").role is Role.DATETIME and schema.column("us").role is Role.DATETIME
    assert loaded.frame["booked"].iloc[3] == pd.Timestamp("2024-04-04")
    assert loaded.frame["us"].iloc[3] == pd.Timestamp("2024-04-04")


def test_dates_with_time_zones_and_a_bad_value(tmp_path):
    text = "id,when,n\n" + "".join(f"{i},2024-01-{i % 9 + 1:02d}T10:00:00+02:00,{i}\n" for i in range(30)) + "30,soon,1\n"
    loaded, schema = engine_io.load(_write(tmp_path, "tz.csv", text))
    assert schema.column("when").role is Role.DATETIME
    assert loaded.frame["when"].iloc[0] == pd.Timestamp("2024-01-01T08:00:00Z")
    assert loaded.frame["when"].isna().tolist()[-1]
    assert "column 'when': 1 value is not a date (row 32: 'soon'); treated as missing" in loaded.problems


def test_overrides_apply_through_load(tmp_path):
    path = _write(tmp_path, "l.csv", _ledger_text())
    overrides = SchemaOverrides(roles={"BUKRS": Role.IGNORED, "BELNR": Role.NUMERIC}, label_column="label",
                                normal_value="global")
    overrides = SchemaOverrides.from_dict(json.loads(json.dumps(overrides.to_dict())))
    loaded, schema = engine_io.load(path, overrides)
    assert schema.column("BUKRS").role is Role.IGNORED and schema.column("BELNR").role is Role.NUMERIC
    assert schema.normal_value == "global"
    assert engine_io.label_vector(loaded.frame, schema).sum() == 59


def test_validate_for_training(tmp_path):
    loaded, schema = engine_io.load(_write(tmp_path, "l.csv", _ledger_text()))
    engine_io.validate_for_training(loaded.frame, schema)  # fine
    only_ids = SchemaOverrides(roles={c: Role.IGNORED for c in ("WAERS", "BUKRS", "DMBTR")}).apply(schema)
    with pytest.raises(DataError, match="no usable feature column"):
        engine_io.validate_for_training(loaded.frame, only_ids, path="l.csv")
    with pytest.raises(DataError, match="only 1 data row"):
        engine_io.validate_for_training(loaded.frame.iloc[:1], schema)


def test_wide_file_loads(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20, 10_000)), columns=[f"c{j}" for j in range(10_000)])
    frame["label"] = np.arange(20) % 2
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    loaded, schema = engine_io.load(path)
    assert loaded.frame.shape == (20, 10_001)
    assert schema.label_column == "label" and len(schema.feature_columns) == 10_000
