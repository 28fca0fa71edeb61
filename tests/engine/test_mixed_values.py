"""Text among numbers: the values that keep a mostly-numeric column text are found, with their rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from engine.io.mixed import text_among_numbers


@pytest.mark.parametrize("values", [
    pd.Series(["2", "abc", "6", None, "7"], dtype=object),
    pd.Series(["2", "abc", "6", "", "7"], dtype="string"),
    pa.chunked_array([["2", "abc"], ["6", None, "7"]]),
    pa.array(["2", " abc ", "6", None, "7"]),
])
def test_the_issue_column_is_mixed(values):
    mixed = text_among_numbers(values)
    assert mixed is not None
    assert mixed.positions.tolist() == [1] and (mixed.numbers, mixed.texts) == (3, 1)
    assert mixed.examples == ["abc"]
    text = mixed.describe("y", row_of=lambda i: i + 2)  # file rows: the header is row 1
    assert text.startswith("column 'y' mixes numbers and text: 3 of 4 values are numbers, 1 is text (row 3: 'abc')")


def test_rows_are_listed_up_to_five():
    values = pd.Series(["1", "x1", "2", "x2", "3", "x3", "4", "x4", "5", "x5", "6", "x6", "7", "8"])
    mixed = text_among_numbers(values)
    assert mixed.positions.tolist() == [1, 3, 5, 7, 9, 11]
    assert "rows 2, 4, 6, 8, 10, ...: 'x1', 'x2', 'x3', 'x4', 'x5'" in mixed.describe("c")


@pytest.mark.parametrize("values", [
    pd.Series([1.0, 2.0, np.nan]),  # numbers already
    pd.Series(["1", "2", "3.5"]),  # all numbers as text
    pd.Series(["A1", "B2", "C3"]),  # codes
    pd.Series(["North", "South", "7", "East"]),  # mostly words: a code or name that happens to be a number
    pd.Series(["abc", None, ""]),  # one value
    pd.Series([True, False]),
])
def test_columns_that_are_not_mixed(values):
    assert text_among_numbers(values) is None


def test_reading_a_file_reports_the_mixed_column(tmp_path):
    from engine.io import load

    path = tmp_path / "mixed.csv"
    path.write_text("x,y,label\n1,2,0\n2,abc,0\n3,6,1\n4,,0\n5,7,0\n", encoding="utf-8")
    loaded, schema = load(path)
    problems = list(loaded.problems) + list(schema.problems)
    assert any("column 'y' mixes numbers and text" in p and "row 3: 'abc'" in p for p in problems), problems
