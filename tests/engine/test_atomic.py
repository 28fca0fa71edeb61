import pytest

from engine.atomic import atomic_output, atomic_write_text
from engine.errors import DataError


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_a_complete_write_replaces_the_file(tmp_path):
    target = tmp_path / "project.json"
    target.write_text("old")
    atomic_write_text(target, '{"new": true}')
    assert target.read_text() == '{"new": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["project.json"]


def test_a_missing_folder_is_a_located_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"), atomic_output(tmp_path / "nope" / "x.csv"):
        pass
