import subprocess
import sys

from tests.conftest import REPO_ROOT

SUBCOMMANDS = ("gui", "inspect", "train", "score", "evaluate", "compare", "simulate-review", "report")


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "main.py", "--help"], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout
    for name in SUBCOMMANDS:
        assert name in out


def test_missing_file_is_one_line_error_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "main.py", "inspect", str(tmp_path / "nope.csv")],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "nope.csv" in result.stderr
