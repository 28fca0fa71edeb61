"""``main.py inspect``: the benchmark files and a full-size ledger give the right label and roles."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cli import main as cli_main
from tests.conftest import REPO_ROOT

LEDGER_ROLES = {"BELNR": "identifier", "WAERS": "categorical", "BUKRS": "categorical", "KTOSL": "categorical",
                "PRCTR": "categorical", "BSCHL": "categorical", "HKONT": "categorical", "DMBTR": "numeric",
                "WRBTR": "numeric", "label": "label"}


def _inspect_json(capsys, path) -> dict:
    assert cli_main(["inspect", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object on one line
    return json.loads(out, parse_constant=_no_nan)


def _no_nan(constant: str):
    raise AssertionError(f"{constant} is not JSON")  # json.loads would accept NaN/Infinity silently


def _roles(result: dict) -> dict[str, str]:
    return {c["name"]: c["role"] for c in result["columns"]}


def _check_ledger(result: dict, rows: int) -> None:
    assert result["rows"] == rows and result["n_columns"] == 10
    assert result["label_column"] == "label" and result["normal_value"] == "regular"
    assert _roles(result) == LEDGER_ROLES
    assert result["problems"] == []


def test_every_benchmark_file_gives_label_and_numeric_features(capsys, benchmark_data):
    files = sorted(benchmark_data.glob("*.csv"))
    assert len(files) >= 11
    for path in files:
        result = _inspect_json(capsys, path)
        assert result["file"] == str(path)
        assert result["label_column"] == "label", path.name
        assert result["normal_value"] == "0", path.name
        assert result["encoding"] == "utf-8" and result["delimiter"] == ","
        roles = _roles(result)
        features = [n for n, r in roles.items() if r == "numeric"]
        others = {n: r for n, r in roles.items() if r != "numeric"}
        if path.name.startswith("ecg5000"):
            assert len(features) == 140 and all(n.startswith("t") for n in features)
            assert others == {"heartbeat_class": "ignored", "label": "label"}
            assert "leak" in next(c["reason"] for c in result["columns"] if c["name"] == "heartbeat_class")
        else:
            constant = {c["name"] for c in result["columns"] if c["reason"].startswith("the same value")}
            assert {n: r for n, r in others.items() if n not in constant} == {"label": "label"}, path.name
            assert all(others[n] == "ignored" for n in constant)  # mnist's always-blank pixels
            assert result["feature_columns"] == features
        for column in result["columns"]:
            assert 0.0 <= column["missing_share"] <= 1.0 and column["n_distinct"] >= 1
            if column["role"] == "numeric":
                assert column["min"] <= column["max"]


def test_training_files_with_only_normal_rows_say_so(capsys, benchmark_data):
    result = _inspect_json(capsys, benchmark_data / "kdd_train_normal.csv")
    assert any("single value" in p for p in result["problems"])


def test_bundled_sample_ledger_roles(capsys, sample_csv):
    result = _inspect_json(capsys, sample_csv)
    assert _roles(result) == LEDGER_ROLES
    assert result["label_column"] == "label" and result["normal_value"] == "regular"
    label = next(c for c in result["columns"] if c["name"] == "label")
    assert set(label["top_values"]) == {"regular", "global", "local"}


def test_text_output_lists_roles_reasons_and_problems(capsys, tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_text("BELNR;WAERS;DMBTR;const;label\n" + "".join(
        f"{100 + i};{'EUR' if i % 3 else 'USD'};{i},50;1;{'fraud' if i == 7 else 'ok'}\n" for i in range(40)))
    assert cli_main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 40 rows, 5 columns (utf-8, semicolon-separated)" in out
    assert "BELNR" in out and "identifier" in out and "unique in every row" in out
    assert "DMBTR" in out and "numeric" in out
    assert "label column: label (normal value: ok)" in out
    assert "column 'const': the same value in every row" in out


def test_json_has_the_documented_keys(capsys, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,label\n" + "".join(f"{i}.5,{'inf' if i == 3 else i},{i % 2}\n" for i in range(30)))
    result = _inspect_json(capsys, path)
    for key in ("file", "rows", "n_columns", "encoding", "delimiter", "columns", "label_column", "normal_value",
                "problems"):
        assert key in result
    for key in ("name", "role", "reason", "missing_share", "n_distinct", "min", "max", "top_values"):
        assert key in result["columns"][0]
    assert any("row 5" in p and "'b'" in p for p in result["problems"])


def test_unusable_file_exits_non_zero_with_one_line(capsys, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n")
    assert cli_main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "row 3" in err


@pytest.mark.slow
def test_full_size_ledger_in_a_subprocess(tmp_path, sample_csv):
    """533,009 ledger rows through the real command line. The rows are the bundled sample (made by
    make_journal_entries.py) repeated with fresh document numbers: the generator itself needs about half
    a minute for this size, so benchmarks/bench_read_csv.py runs it and this test stays quick."""
    sample = pd.read_csv(sample_csv)
    repeats = -(-533_009 // len(sample))
    ledger = pd.concat([sample] * repeats, ignore_index=True).iloc[:533_009]
    ledger["BELNR"] = np.arange(len(ledger)) + 100_000_001
    path = tmp_path / "ledger_533k.csv.gz"
    ledger.to_csv(path, index=False, compression={"method": "gzip", "compresslevel": 1})
    done = subprocess.run([sys.executable, "main.py", "inspect", str(path), "--json"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout, parse_constant=_no_nan)
    _check_ledger(result, 533_009)
    assert result["compression"] == "gzip"
