"""Malformed-input suite (issue 7): every generated file either loads with its problems listed, or
raises DataError whose message names the file and, where it applies, the row and column.

CASES is shared with tests/cli/test_malformed_inputs.py, which runs the same files through the CLI.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from engine import io as engine_io
from engine.errors import DataError
from engine.schema import Role


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]  # writes the file under the given folder, returns its path
    error: tuple[str, ...] = ()  # substrings of the DataError message; empty: the file loads
    row: int | None = None  # row the error or problem must name
    column: str | None = None  # column the error or problem must name
    problems: tuple[str, ...] = ()  # substrings that must occur in the listed problems (when it loads)
    check: Callable | None = None  # extra check on (LoadedFile, Schema) when it loads
    cli_subset: bool = False  # also run through a real `main.py inspect` subprocess
    tags: tuple[str, ...] = field(default_factory=tuple)


def _write(name: str, content: bytes | str, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path
    return make


def _rows(n: int, template: str = "{i},{v:.2f},{c}", cats: str = "ABC") -> str:
    return "".join(template.format(i=i, v=(i * 7.31) % 97, c=cats[i % len(cats)]) + "\n" for i in range(n))


GOOD = "id,amount,kind\n" + _rows(30)  # 30 records: row 2 .. row 31


def _gzip(text: str, name: str = "data.csv.gz") -> Callable[[Path], Path]:
    return _write(name, gzip.compress(text.encode()))


def _truncated_gzip(folder: Path) -> Path:
    blob = gzip.compress((GOOD * 50).encode())
    path = folder / "truncated.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    return path


def _damaged_gzip(folder: Path) -> Path:
    blob = bytearray(gzip.compress((GOOD * 50).encode()))
    blob[20:60] = b"\xff" * 40
    path = folder / "damaged.csv.gz"
    path.write_bytes(bytes(blob))
    return path


def _zip(members: dict[str, str], name: str = "data.zip") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for member, text in members.items():
                z.writestr(member, text)
        path = folder / name
        path.write_bytes(buf.getvalue())
        return path
    return make


def _binary_junk(folder: Path) -> Path:
    path = folder / "junk.csv"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path


def _control_junk(folder: Path) -> Path:
    rng = np.random.default_rng(4)
    junk = rng.choice(np.array([1, 2, 3, 5, 7, 65, 66, 44, 10], dtype=np.uint8), 4000).tobytes()
    path = folder / "controls.csv"
    path.write_bytes(b"a,b\n" + junk)
    return path


def _wide(folder: Path) -> Path:
    n_cols, rng = 10_000, np.random.default_rng(5)
    header = ",".join(f"f{j}" for j in range(n_cols)) + ",label\n"
    body = "".join(",".join(f"{v:.3f}" for v in rng.normal(size=n_cols)) + f",{i % 2}\n" for i in range(6))
    path = folder / "wide.csv"
    path.write_text(header + body)
    return path


def _folder(folder: Path) -> Path:
    path = folder / "a_folder.csv"
    path.mkdir()
    return path


def _missing(folder: Path) -> Path:
    return folder / "does_not_exist.csv"


def _below_a_file(folder: Path) -> Path:
    (folder / "plain.txt").write_text("x")
    return folder / "plain.txt" / "inner.csv"


def _column(name: str, role: Role | None = None, dtype: str | None = None):
    def check(loaded, schema):
        info = schema.column(name)
        if role is not None:
            assert info.role is role, (info.role, info.reason)
        if dtype is not None:
            assert info.dtype == dtype, info.dtype
    return check


def _all(*checks):
    def check(loaded, schema):
        for c in checks:
            c(loaded, schema)
    return check


def _encoding(expected: str):
    def check(loaded, schema):
        assert loaded.encoding == expected
    return check


def _delimiter(expected: str):
    def check(loaded, schema):
        assert loaded.delimiter == expected
    return check


def _shape(rows: int, cols: int):
    def check(loaded, schema):
        assert loaded.frame.shape == (rows, cols)
    return check


def _value(column: str, index: int, expected):
    def check(loaded, schema):
        got = loaded.frame[column].iloc[index]
        if isinstance(expected, float):
            assert got == pytest.approx(expected)
        else:
            assert got == expected
    return check


def _missing_at(column: str, index: int):
    def check(loaded, schema):
        assert loaded.frame[column].isna().iloc[index]
    return check


def _label(expected: str | None, normal: str | None = None):
    def check(loaded, schema):
        assert schema.label_column == expected
        if normal is not None:
            assert schema.normal_value == normal
    return check


def _bad_ragged_lines() -> str:
    lines = GOOD.splitlines()
    lines[9] = "9,1.5"  # row 10: short
    lines[19] = "19,1.5,A,extra"  # row 20: long
    return "\n".join(lines) + "\n"


CASES: list[Case] = [
    # --- nothing to read
    Case("empty file", _write("empty.csv", b""), error=("empty",)),
    Case("whitespace only", _write("blank.csv", "\n  \n\r\n"), error=("empty",)),
    Case("header only", _write("header_only.csv", "id,amount,kind\n"), error=("header row but no data rows",)),
    Case("header then blank lines", _write("header_blank.csv", "id,amount,kind\n\n\n"),
         error=("header row but no data rows",)),
    # --- paths
    Case("missing file", _missing, error=("not found",), cli_subset=True),
    Case("a directory", _folder, error=("folder",)),
    Case("path below a file", _below_a_file, error=("not found",)),
    # --- encodings
    Case("UTF-8 BOM", _write("bom.csv", b"\xef\xbb\xbf" + GOOD.encode()),
         check=_all(_encoding("utf-8-sig"), _column("id", Role.IDENTIFIER), _shape(30, 3))),
    Case("UTF-8 BOM with semicolons", _write("bom_semi.csv", b"\xef\xbb\xbf" + GOOD.replace(",", ";").encode()),
         check=_all(_encoding("utf-8-sig"), _delimiter(";"), _shape(30, 3))),
    Case("cp1252 text", _write("cp1252.csv", "name,amount\n" + "".join(f"Müller é{i % 3},{i}.5\n" for i in range(30)),
                               encoding="cp1252"),
         problems=("not UTF-8",), check=_all(_encoding("cp1252"), _value("name", 0, "Müller é0"))),
    Case("latin-1 byte cp1252 leaves undefined", _write("latin1.csv", b"a,b\n" + b"x\x81y,1\nz,2\nw,3\n"),
         problems=("not UTF-8",), check=_encoding("latin-1")),
    Case("mixed UTF-8 and cp1252 bytes", _write("mixed_enc.csv", "a,b\nMüller,1\n".encode() + b"M\xfcller,2\nx,3\n"),
         problems=("mixes encodings", "row 3")),
    Case("UTF-16 with BOM", _write("utf16.csv", GOOD, encoding="utf-16"), check=_all(_encoding("utf-16"), _shape(30, 3))),
    # --- delimiters and quoting
    Case("semicolon with decimal commas", _write("semi.csv", "id;amount;kind\n" + "".join(
        f"{i};{i},{i % 10}5;A\n" for i in range(30))),
         check=_all(_delimiter(";"), _column("amount", Role.NUMERIC), _value("amount", 3, 3.35))),
    Case("tab separated", _write("tabs.tsv", GOOD.replace(",", "\t")), check=_all(_delimiter("\t"), _shape(30, 3))),
    Case("pipe separated", _write("pipes.csv", GOOD.replace(",", "|")), check=_all(_delimiter("|"), _shape(30, 3))),
    Case("quoted thousands separators", _write("thousands.csv", "id,amount\n" + "".join(
        f'{i},"{i * 1000 + 234:,}.50"\n' for i in range(30))),
         check=_all(_column("amount", Role.NUMERIC), _value("amount", 2, 2234.5))),
    Case("ambiguous 1,234 numbers", _write("ambiguous.csv", "id,amount\n" + "".join(
        f'{i},"{i + 1},{i * 37 % 1000:03d}"\n' for i in range(30))), problems=("could mean",),
         check=_column("amount", dtype="string")),
    Case("mixed delimiters", _write("mixed_delims.csv", "a,b,c\n1,2,3\n4;5;6\n7,8,9\n"),
         error=("has 1 field, expected 3", "comma"), row=3, cli_subset=True),
    Case("short row", _write("short.csv", "a,b,c\n1,2,3\n4,5\n7,8,9\n"), error=("has 2 fields, expected 3",), row=3,
         ),
    Case("overlong row", _write("long.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n"), error=("has 4 fields, expected 3",),
         row=4),
    Case("several ragged rows", _write("ragged.csv", _bad_ragged_lines()), error=("2 rows like this", "rows 10, 20"),
         row=10),
    Case("unterminated quote at the end", _write("unterminated.csv", 'a,b,c\n1,2,3\n4,"five,6\n7,8,9\n'),
         error=("unterminated quote",), row=3, cli_subset=True),
    Case("unterminated quote then another quote", _write("unterminated2.csv",
                                                         'a,b,c\n1,2,3\n4,"five,6\n7,8,9\n10,"x",12\n'),
         error=("row",), row=3),
    Case("text after a closing quote (read leniently)", _write("after_quote.csv", 'a,b,c\n1,2,3\n4,"five"x,6\n'),
         check=_all(_shape(2, 3), _value("b", 1, "fivex"))),
    Case("quoted delimiters and newlines", _write("multiline.csv",
                                                  'id,note,amount\n' + "".join(f'{i},"line one, and\nline two {i}",{i}.5\n'
                                                                               for i in range(30))),
         check=_all(_shape(30, 3), _value("note", 1, "line one, and\nline two 1"), _value("amount", 2, 2.5))),
    Case("CRLF line endings", _write("crlf.csv", GOOD.replace("\n", "\r\n")),
         check=_all(_shape(30, 3), _value("kind", 0, "A"))),
    Case("a very long field", _write("long_field.csv", "a,b\n" + "x" * 2_000_000 + ",1\ny,2\n"), check=_shape(2, 2)),
    # --- not text, compressed
    Case("binary junk", _binary_junk, error=("not a text file",), cli_subset=True),
    Case("control characters", _control_junk, error=("not a text file",)),
    Case("a PDF", _write("report.csv", b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n"), error=("PDF",)),
    Case("a PNG", _write("image.csv", b"\x89PNG\r\n\x1a\n" + bytes(100)), error=("PNG",)),
    Case("an xlsx workbook", _zip({"[Content_Types].xml": "<x/>", "xl/workbook.xml": "<x/>"}, "book.xlsx"),
         error=("Excel",)),
    Case("zip with one CSV", _zip({"data.csv": GOOD}), check=_shape(30, 3)),
    Case("zip with two CSVs", _zip({"a.csv": GOOD, "b.csv": GOOD}, "two.zip"), error=("2 files",)),
    Case("gzip", _gzip(GOOD), check=_shape(30, 3)),
    Case("bz2", _write("data.csv.bz2", bz2.compress(GOOD.encode())), check=_shape(30, 3)),
    Case("truncated gzip", _truncated_gzip, error=("gzip", "truncated"), cli_subset=True),
    Case("damaged gzip", _damaged_gzip, error=("gzip", "damaged")),
    # --- header problems
    Case("duplicate column names", _write("dup.csv", "id,amount,amount\n1,2,3\n4,5,6\n"),
         error=("duplicate column name", "columns 2 and 3"), row=1, column="amount", cli_subset=True),
    Case("empty column name", _write("unnamed.csv", ",amount,kind\n" + _rows(30)),
         problems=("column 1 has no name",), check=_column("unnamed_1", Role.IDENTIFIER)),
    Case("header names with spaces and quotes", _write("names.csv", ' "id" , amount ,kind\n' + _rows(30)),
         check=lambda loaded, schema: list(loaded.frame.columns) == ["id", "amount", "kind"]),
    # --- sizes
    Case("10,000 columns", _wide, check=_all(_shape(6, 10_001), _label("label"))),
    Case("one data row", _write("one_row.csv", "id,amount,kind\n1,2.5,A\n"), problems=("no usable feature column",),
         check=_shape(1, 3)),
    Case("a single column", _write("single.csv", "amount\n" + "".join(f"{i}.5\n" for i in range(30))),
         check=_all(_shape(30, 1), _column("amount", Role.NUMERIC))),
    # --- values
    Case("all-missing column", _write("all_missing.csv", "id,amount,empty\n" + "".join(f"{i},{i}.5,\n" for i in range(30))),
         problems=("'empty': every value is missing",), check=_column("empty", Role.IGNORED)),
    Case("all-constant column", _write("constant.csv", "id,amount,same\n" + "".join(f"{i},{i}.5,7\n" for i in range(30))),
         problems=("'same': the same value in every row",), check=_column("same", Role.IGNORED)),
    Case("NaN tokens", _write("nan.csv", "id,amount\n" + "".join(f"{i},{'NaN' if i % 3 == 0 else i}\n" for i in range(30))),
         check=lambda loaded, schema: schema.column("amount").missing_share == pytest.approx(10 / 30)),
    Case("inf values", _write("inf.csv", "id,amount\n" + "".join(f"{i},{'inf' if i == 4 else i}\n" for i in range(30))),
         problems=("infinite",), row=6, column="amount", check=_missing_at("amount", 4)),
    Case("-inf and 1e400 overflow", _write("overflow.csv", "id,amount\n" + "".join(
        f"{i},{'-inf' if i == 1 else '1e400' if i == 2 else i}\n" for i in range(30))),
         problems=("2 values are infinite",), row=3, column="amount"),
    Case("1e308 sentinel", _write("huge.csv", "id,amount\n" + "".join(f"{i},{'1e308' if i == 7 else i + 0.5}\n"
                                                                    for i in range(30))),
         problems=("huge",), row=9, column="amount", check=_missing_at("amount", 7)),
    Case("text in a numeric column", _write("text_in_numbers.csv", "id,amount\n" + "".join(
        f"{i},{'n/a?' if i in (3, 17) else 'abc' if i == 25 else i + 0.5}\n" for i in range(60))),
         problems=("3 values are not numbers", "rows 5, 19, 27", "'abc'"), column="amount",
         check=_all(_column("amount", Role.NUMERIC), _missing_at("amount", 3)), cli_subset=True),
    Case("text in numeric column after blank lines", _write("blank_lines.csv", "id,amount\n1,2\n\n\n2,x\n" + "".join(
        f"{i},{i}\n" for i in range(3, 40))), problems=("row 5",), column="amount"),
    Case("mostly text: categorical", _write("mostly_text.csv", "id,code\n" + "".join(
        f"{i},{'A' + str(i % 4) if i % 2 else i % 4}\n" for i in range(40))), check=_column("code", Role.CATEGORICAL)),
    Case("padded numbers", _write("padded.csv", "id,amount\n" + "".join(f"{i},  {i}.25 \n" for i in range(30))),
         check=_all(_column("amount", Role.NUMERIC), _value("amount", 1, 1.25))),
    Case("integer overflow", _write("bigint.csv", "id,amount\n" + "".join(f"{i},{10**25 + i}\n" for i in range(30))),
         check=_column("amount", dtype="float")),
    Case("dates", _write("dates.csv", "id,posted,booked,amount\n" + "".join(
        f"{i},2024-03-{i % 28 + 1:02d} 10:15:00,{i % 28 + 1:02d}.04.2024,{i}.5\n" for i in range(30))),
         check=_all(_column("posted", Role.DATETIME), _column("booked", Role.DATETIME))),
    # --- labels
    Case("single-value label", _write("one_label.csv", "id,amount,label\n" + "".join(f"{i},{i}.5,0\n" for i in range(30))),
         problems=("label column 'label' has a single value",), check=_label("label", "0")),
    Case("true/false label", _write("bool_label.csv", "id,amount,is_fraud\n" + "".join(
        f"{i},{i}.5,{'true' if i % 10 == 0 else 'false'}\n" for i in range(30))), check=_label("is_fraud", "False")),
    Case("string label and a target-like sibling", _write("two_targets.csv", "id,amount,label,attack_class\n" + "".join(
        f"{i},{i}.5,{'bad' if i % 10 == 0 else 'ok'},{i % 3}\n" for i in range(30))),
         check=_all(_label("label", "ok"), _column("attack_class", Role.IGNORED))),
    Case("no usable feature column", _write("no_features.csv", "id,label\n" + "".join(f"{i},{i % 2}\n" for i in range(30))),
         problems=("no usable feature column",)),
]


def _materialise(case: Case, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return case.make(folder)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_loads_with_problems_or_fails_located(case: Case, tmp_path):
    path = _materialise(case, tmp_path)
    if case.error:
        with pytest.raises(DataError) as info:
            engine_io.load(path)
        message = str(info.value)
        assert str(path) in message and info.value.file == str(path)
        for part in case.error:
            assert part in message, message
        if case.row is not None:
            assert f"row {case.row}" in message and info.value.row == case.row
        if case.column is not None:
            assert f"column '{case.column}'" in message and info.value.column == case.column
        assert "\n" not in message
        return
    loaded, schema = engine_io.load(path)
    problems = loaded.problems + schema.problems
    text = " | ".join(problems)
    for part in case.problems:
        assert part in text, problems
    if case.row is not None:
        assert f"row {case.row}" in text or f"rows {case.row}" in text, problems
    if case.column is not None:
        assert f"'{case.column}'" in text, problems
    if case.check is not None:
        assert case.check(loaded, schema) is not False


def test_suite_has_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def test_unreadable_file_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.csv"
    path.write_text(GOOD)

    def refuse(p):
        raise PermissionError(13, "Permission denied", str(p))

    from engine.io import reader, source

    monkeypatch.setattr(source, "_open_binary", refuse)
    monkeypatch.setattr(reader, "_open_binary", refuse)
    with pytest.raises(DataError, match="permission denied") as info:
        engine_io.load(path)
    assert str(path) in str(info.value)


def test_no_usable_feature_column_is_fatal_for_training(tmp_path):
    path = _materialise(next(c for c in CASES if c.name == "no usable feature column"), tmp_path)
    loaded, schema = engine_io.load(path)
    with pytest.raises(DataError, match="no usable feature column") as info:
        engine_io.validate_for_training(loaded.frame, schema, path=str(path))
    assert str(path) in str(info.value)


def test_one_row_is_fatal_for_training(tmp_path):
    loaded, schema = engine_io.load(_write("one.csv", "a,b\n1,2\n")(tmp_path))
    with pytest.raises(DataError):
        engine_io.validate_for_training(loaded.frame, schema)
