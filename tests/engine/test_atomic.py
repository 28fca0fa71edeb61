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


def _killed_writer(target, kind="file"):
    """A child process that starts a write to ``target`` and is killed (SIGKILL) in the middle of it."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    if kind == "file":
        body = ("from engine.atomic import atomic_output\nimport os, signal, sys\n"
                "with atomic_output(sys.argv[1]) as tmp:\n    tmp.write_text('half')\n"
                "    os.kill(os.getpid(), signal.SIGKILL)\n")
    else:
        body = ("import numpy as np, os, signal, sys\nfrom engine import bundle\n"
                "def die(*a):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
                "bundle._swap_in = die\nbundle.save_bundle(sys.argv[1], {}, {'x': np.zeros(3)})\n")
    proc = subprocess.run([sys.executable, "-c", body, str(target)], cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == -signal.SIGKILL


def test_stale_temporaries_of_killed_writes_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "report.csv"
    for _ in range(3):  # each killed write removes the one before it: they never pile up
        _killed_writer(target)
        left = [p.name for p in tmp_path.iterdir()]
        assert len(left) == 1 and left[0].startswith(".report.csv.") and left[0].endswith(".part")
    other = tmp_path / ".other.csv.1234.x.part"  # another target's temporary is not ours to remove
    other.write_text("x")
    atomic_write_text(target, "complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "report.csv"]
    assert target.read_text() == "complete"


def test_a_live_writers_temporary_is_kept(tmp_path):
    target = tmp_path / "q.csv"
    with atomic_output(target) as tmp:  # this process is alive: a second write leaves the first one's file
        tmp.write_text("first")
        atomic_write_text(target, "second")
        assert tmp.exists()
    assert target.read_text() == "first"


def test_a_killed_bundle_save_is_cleaned_up_by_the_next_save(tmp_path):
    import numpy as np

    from engine import bundle

    target = tmp_path / "model"
    _killed_writer(target, kind="bundle")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.tmp-")]
    bundle.save_bundle(target, {}, {"x": np.ones(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
