"""engine.io.read_csv: rows with the wrong number of fields are refused by row, or skipped on request."""

from __future__ import annotations

import pytest

from engine.errors import BadRowsError
from engine.io import load, read_csv
from engine.io.dialect import find_bad_rows

BAD = "a,b,c\n1,2,x\n3,4,y\n5,6\n7,8,z,extra\n\n9,10,w\n"


@pytest.fixture
def bad_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD)
    return path


def test_bad_rows_are_refused_with_their_rows_by_default(bad_csv):
    with pytest.raises(BadRowsError) as info:
        read_csv(bad_csv)
    assert info.value.row == 4 and info.value.bad_rows == [(4, 2), (5, 4)] and info.value.expected == 3
    assert "rows 4, 5" in str(info.value)


def test_skip_bad_rows_keeps_the_good_rows_and_lists_the_bad(bad_csv):
    loaded = read_csv(bad_csv, skip_bad_rows=True)
    assert loaded.frame["c"].tolist() == ["x", "y", "w"]
    assert loaded.skipped_rows == [(4, 2), (5, 4)]
    assert [loaded.row_number(i) for i in range(3)] == [2, 3, 7]  # file rows survive the skip
    assert any("2 bad row(s) skipped" in p and "4, 5" in p for p in loaded.problems)
    frame, schema = load(bad_csv, skip_bad_rows=True)
    assert len(frame.frame) == 3 and schema is not None


def test_a_clean_file_skips_nothing(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    assert read_csv(path, skip_bad_rows=True).skipped_rows == []


def test_find_bad_rows_returns_rows_and_fields_without_raising():
    assert find_bad_rows(BAD.encode(), ["a", "b", "c"], ",", "bad.csv") == [(4, 2), (5, 4)]


def test_session_counts_skipped_rows_in_its_report(bad_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    from engine.session import Session

    s = Session(data_dir=tmp_path / "data", user="t")
    try:
        s.load(bad_csv, skip_bad_rows=True)
        assert s.skipped_rows == ["row 4: 2 fields, expected 3", "row 5: 4 fields, expected 3"]
    finally:
        s.close()


def test_a_project_of_a_file_read_without_its_bad_rows_reopens(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from engine.session import Session

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"amount": rng.lognormal(5, 0.4, 120).round(2), "account": rng.choice(["A", "B"], 120)})
    path = tmp_path / "ledger.csv"
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(4, "1,2,3")
    path.write_text("\n".join(lines) + "\n")
    s = Session(data_dir=tmp_path / "data", user="t")
    s.load(path, skip_bad_rows=True)
    s.train("ecod")
    s.save(tmp_path / "p.adproj")
    scores = s.scores.copy()
    s.close()
    again = Session.open(tmp_path / "p.adproj", data_dir=tmp_path / "data", user="t")
    try:
        assert len(again.frame) == 120 and again.skipped_rows == ["row 5: 3 fields, expected 2"]
        np.testing.assert_allclose(again.scores, scores)
    finally:
        again.close()
