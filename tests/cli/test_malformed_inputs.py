"""Malformed-input suite through the command line (issue 7).

Every generated case goes through ``cli.main`` in-process (fast); a representative subset also runs as
a real ``main.py inspect`` subprocess, to prove the user sees one line and no traceback. Unusable files
exit 2 with ``error: <file>, row N, column 'C': ...``; usable ones exit 0 and list their problems.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from cli import main as cli_main
from tests.conftest import REPO_ROOT
from tests.engine.test_malformed_inputs import CASES, Case

ERROR_CASES = [c for c in CASES if c.error]
SUBPROCESS_CASES = [c for c in CASES if c.cli_subset]


def _check_error_line(case: Case, path, code: int, out: str, err: str) -> None:
    assert code == 2, (case.name, code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"error: {path}"), line
    for part in case.error:
        assert part in line, line
    if case.row is not None:
        assert f"row {case.row}" in line, line
    if case.column is not None:
        assert f"column '{case.column}'" in line, line


def _check_usable(case: Case, path, code: int, out: str, err: str) -> None:
    assert code == 0, (case.name, err)
    assert "Traceback" not in err
    assert out.startswith(f"{path}: "), out[:200]
    for part in case.problems:
        assert part in out, out
    if case.problems:
        assert "problems (" in out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_inspect_in_process(case: Case, tmp_path, capsys):
    tmp_path.mkdir(exist_ok=True)
    path = case.make(tmp_path)
    code = cli_main(["inspect", str(path)])
    captured = capsys.readouterr()
    if case.error:
        _check_error_line(case, path, code, captured.out, captured.err)
    else:
        _check_usable(case, path, code, captured.out, captured.err)


@pytest.mark.parametrize("command", [["train", "--out", "{tmp}/model"], ["evaluate", "--label-column", "label"]])
@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.name for c in ERROR_CASES])
def test_train_and_evaluate_refuse_unusable_files_in_one_line(case: Case, command, tmp_path, capsys):
    path = case.make(tmp_path)
    argv = [command[0], str(path)] + [a.format(tmp=tmp_path) for a in command[1:]]
    code = cli_main(argv)
    captured = capsys.readouterr()
    _check_error_line(case, path, code, captured.out, captured.err)
    assert not (tmp_path / "model").exists()  # nothing written half-way


def _run_inspect(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", "inspect", str(path)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_inspect_subprocess_representative_subset(tmp_path):
    assert len(SUBPROCESS_CASES) >= 6
    paths = []
    for i, case in enumerate(SUBPROCESS_CASES):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        paths.append(case.make(folder))
    with ThreadPoolExecutor(max_workers=2) as pool:  # start-up (imports) dominates: overlap it on 2 cores
        results = list(pool.map(_run_inspect, paths))
    for case, path, done in zip(SUBPROCESS_CASES, paths, results, strict=True):
        if case.error:
            _check_error_line(case, path, done.returncode, done.stdout, done.stderr)
        else:
            _check_usable(case, path, done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("command", [["train", "--out", "{tmp}/model"], ["evaluate", "--label-column", "label"]])
@pytest.mark.parametrize("name", ["no usable feature column", "one data row"])
def test_train_and_evaluate_on_files_that_load_but_cannot_train(name, command, tmp_path, capsys):
    case = next(c for c in CASES if c.name == name)
    path = case.make(tmp_path)
    argv = [command[0], str(path)] + [a.format(tmp=tmp_path) for a in command[1:]]
    code = cli_main(argv)
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    [line] = captured.err.splitlines()
    assert line.startswith(f"error: {path}"), line
    assert not (tmp_path / "model").exists()


def test_unreadable_file_in_one_line(tmp_path, capsys, monkeypatch):
    """Tests run as root here, where chmod cannot make a file unreadable: the refusal is simulated."""

    path = tmp_path / "locked.csv"
    path.write_text("a,b\n1,2\n")

    def refuse(p):
        raise PermissionError(13, "Permission denied", str(p))

    from engine.io import reader, source

    monkeypatch.setattr(source, "_open_binary", refuse)
    monkeypatch.setattr(reader, "_open_binary", refuse)
    assert cli_main(["inspect", str(path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"error: {path}: permission denied: the file cannot be read"


def test_file_too_large_for_memory_in_one_line(tmp_path, capsys, monkeypatch):

    path = tmp_path / "huge.csv"
    path.write_text("a,b\n1,2\n")

    def exhausted(name, p, *args, **kwargs):
        raise MemoryError

    from engine.io import reader

    monkeypatch.setattr(reader, "_read_csv", exhausted)
    assert cli_main(["inspect", str(path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}: too large to load into memory")
