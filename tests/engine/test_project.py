import json
import os
import pickle  # noqa: S403 - only to plant a hostile payload, never loaded by the product

import pytest

from engine.errors import ModelFileError
from engine.project import Project, ThresholdSetting
from engine.schema import Role, SchemaOverrides


def _project(tmp_path):
    data = tmp_path / "ledger.csv"
    data.write_text("a,b\n1,2\n")
    return Project(data_file=str(data),
                   overrides=SchemaOverrides(roles={"a": Role.CATEGORICAL}, label_column="", normal_value=None),
                   detector="autoencoder", params={"hidden_layers": [64, 32], "epochs": 3},
                   model_dir=str(tmp_path / "model"), threshold=ThresholdSetting(1.25, "target_fpr", 0.01),
                   verdict_db=str(tmp_path / "verdicts.sqlite"), extra={"loss_per_miss": 500.0})


def test_round_trip_keeps_every_field(tmp_path):
    p = _project(tmp_path)
    path = p.save(tmp_path / "review.adproj")
    back = Project.load(path)
    assert back.data_file == str(tmp_path / "ledger.csv")
    assert back.overrides.roles == {"a": Role.CATEGORICAL}
    assert back.overrides.label_column == ""
    assert back.params == {"hidden_layers": [64, 32], "epochs": 3}
    assert back.threshold == ThresholdSetting(1.25, "target_fpr", 0.01)
    assert back.verdict_db == str(tmp_path / "verdicts.sqlite")
    assert back.extra == {"loss_per_miss": 500.0}
    # paths beside the project are stored relative, so the folder can be moved
    raw = json.loads(path.read_text())
    assert raw["data_file"] == "ledger.csv"


def test_moved_folder_still_resolves(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "ledger.csv").write_text("x\n1\n")
    p = Project(data_file=str(folder / "ledger.csv"))
    p.save(folder / "r.adproj")
    moved = tmp_path / "b"
    os.rename(folder, moved)
    assert Project.load(moved / "r.adproj").data_file == str(moved / "ledger.csv")


def test_save_is_atomic_previous_version_survives_a_failed_write(tmp_path, monkeypatch):
    path = _project(tmp_path).save(tmp_path / "review.adproj")
    before = path.read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        Project(data_file="other.csv").save(path)
    assert path.read_text() == before
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_pickle_payload_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.adproj"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError, match="refused"):
        Project.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="something"), "not an Anomaly Desk project"),
    (lambda d: d.update(version="1"), "version"),
    (lambda d: d.update(version=99), "newer version"),
    (lambda d: d.update(data_file=5), "data_file"),
    (lambda d: d.pop("data_file"), "data_file"),
    (lambda d: d.update(params=[1, 2]), "params"),
    (lambda d: d["overrides"]["roles"].update(a="evil"), "invalid role"),
    (lambda d: d["threshold"].update(value="high"), "threshold|value"),
    (lambda d: d["threshold"].update(method="exec"), "method"),
    (lambda d: d["threshold"].update(window=-3), "window"),
    (lambda d: d.update(verdict_db="x\x00y"), "verdict_db"),
])
def test_wrong_types_are_refused_with_a_clear_message(tmp_path, mutate, message):
    path = _project(tmp_path).save(tmp_path / "review.adproj")
    d = json.loads(path.read_text())
    mutate(d)
    path.write_text(json.dumps(d))
    with pytest.raises(ModelFileError, match=message):
        Project.load(path)


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1,2]", b"\xff\xfe\x00garbage",
                                     b'{"format":"anomaly-desk-project","version":1,"data_file":"a",'
                                     b'"threshold":{"value":NaN}}'])
def test_damaged_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.adproj"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        Project.load(path)


def test_missing_file_folder_and_huge_file_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="cannot open"):
        Project.load(tmp_path / "nope.adproj")
    with pytest.raises(ModelFileError, match="folder"):
        Project.load(tmp_path)
    huge = tmp_path / "huge.adproj"
    huge.write_bytes(b" " * (9 * 1024 * 1024))
    with pytest.raises(ModelFileError, match="too large"):
        Project.load(huge)
