"""Hostile JSON (deep nesting, huge integers, non-finite numbers) in a bundle or a project gives one
located ModelFileError, never a RecursionError/ValueError/OverflowError."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli import main as cli_main
from engine import safe_json
from engine.errors import ModelFileError
from engine.io import infer_schema
from engine.pipeline import AnomalyModel
from engine.project import Project

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
HUGE_INT = "7" * 100_000
HOSTILE = {"deep list": DEEP, "deep object": DEEP_OBJECT, "100k-digit integer": HUGE_INT,
           "1e999": "1e999", "-1e999": "-1e999", "NaN": "NaN", "Infinity": "-Infinity",
           "moderately deep": "[" * 100 + "]" * 100}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_loads_refuses_with_the_file_named(text):
    with pytest.raises(ModelFileError, match=r"^where\.json: not valid JSON \(") as info:
        safe_json.loads(f'{{"x": {text}}}', "where.json")
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_loads_accepts_ordinary_documents():
    assert safe_json.loads(b'{"a": [1, 2.5, -3e10, null, "x"], "b": {"c": true}}', "f") == {
        "a": [1, 2.5, -3e10, None, "x"], "b": {"c": True}}


@pytest.fixture()
def saved(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    path = tmp_path / "model"
    AnomalyModel("ecod").fit(frame, infer_schema(frame)).save(path)
    return path


def _plant(path, text):
    """model.json with ``"seed"``'s value replaced by hostile text (the rest left valid)."""
    doc = json.loads(path.read_text())
    doc["seed"] = "PLACEHOLDER"
    path.write_text(json.dumps(doc).replace('"PLACEHOLDER"', text))


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_model_json_is_refused_in_one_line(saved, text, capsys):
    _plant(saved / "model.json", text)
    with pytest.raises(ModelFileError, match="model.json: not valid JSON"):
        AnomalyModel.load(saved)
    code = cli_main(["score", str(saved.parent / "x.csv"), "--model", str(saved), "--out",
                     str(saved.parent / "out.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "unexpected" not in err and len(err.strip().splitlines()) == 1, err
    assert "model.json" in err


def test_hostile_safetensors_header_is_refused(saved):
    weights = saved / "weights.safetensors"
    raw = weights.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + n].decode().rstrip()
    deep = header[:-1] + ', "__metadata__": {"x": ' + "[" * 50_000 + "]" * 50_000 + "}}"
    deep = deep.encode()
    weights.write_bytes(len(deep).to_bytes(8, "little") + deep + raw[8 + n:])
    with pytest.raises(ModelFileError, match="weights.safetensors: not valid safetensors header JSON"):
        AnomalyModel.load(saved)


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_project_is_refused_in_one_line(tmp_path, text, capsys):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    path = Project(data_file=str(data)).save(tmp_path / "p.adproj")
    doc = json.loads(path.read_text())
    doc["extra"] = "PLACEHOLDER"
    path.write_text(json.dumps(doc).replace('"PLACEHOLDER"', text))
    with pytest.raises(ModelFileError, match=r"p\.adproj: not valid project JSON"):
        Project.load(path)
    scores = tmp_path / "s.csv"
    scores.write_text("key,score,severity,flagged\n1,0.5,50,false\n")
    code = cli_main(["report", str(scores), "--project", str(path), "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "unexpected" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r.csv").exists()


def test_jsonable_gives_strict_json_types():
    import json

    import numpy as np

    from engine.safe_json import jsonable

    value = {1: (np.float32(0.5), np.int64(3), np.bool_(True)), "a": np.array([1.0, np.nan]),
             "b": [float("inf"), None, "x"]}
    out = jsonable(value)
    assert out == {"1": [0.5, 3, True], "a": [1.0, None], "b": [None, None, "x"]}
    json.dumps(out, allow_nan=False)  # strict JSON: no NaN or Infinity left
