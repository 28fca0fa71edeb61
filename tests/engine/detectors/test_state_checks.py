"""A bundle whose weights were altered (the checksum recomputed, since it sits beside them) is refused
before anything is built: declared sizes against the weights, dtypes, finiteness, indices in range;
and a model that gives non-finite scores never reports "0 flagged"."""

from __future__ import annotations

import hashlib
import json
import resource

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file, save_file

from cli import main as cli_main
from engine.errors import AnomalyDeskError, ModelFileError
from engine.io import infer_schema
from engine.pipeline import AnomalyModel

DEEP = ("autoencoder", "vae", "bigan", "sequence_ae")
QUICK = {"epochs": 1, "batch_size": 64}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120), "c": rng.normal(size=120),
                         "k": rng.choice(["x", "y", "z"], 120)})


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, frame):
    """One trained bundle per detector type, copied fresh by ``_copy`` for each test."""
    root = tmp_path_factory.mktemp("bundles")
    out = {}
    for name in ("iforest", "ecod", "pca", "ocsvm", *DEEP):
        params = dict(QUICK) if name in DEEP else {}
        if name == "bigan":
            params.pop("batch_size")
        out[name] = AnomalyModel(name, params=params).fit(frame, infer_schema(frame)).save(root / name)
    return out


def _copy(bundles, name, tmp_path):
    import shutil

    return shutil.copytree(bundles[name], tmp_path / name)


def _tamper(path, edit_arrays=None, edit_doc=None):
    """Change the weights and/or model.json the way an attacker would: manifest and checksum made to match."""
    arrays = load_file(str(path / "weights.safetensors"))
    if edit_arrays:
        edit_arrays(arrays)
    save_file(arrays, str(path / "weights.safetensors"))
    doc = json.loads((path / "model.json").read_text())
    doc["arrays"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()}
    doc["weights_sha256"] = hashlib.sha256((path / "weights.safetensors").read_bytes()).hexdigest()
    if edit_doc:
        edit_doc(doc)
    (path / "model.json").write_text(json.dumps(doc))


def _set(name, fn):
    def edit(arrays):
        arrays[name] = fn(arrays[name].copy())
    return edit


def _refused(path, *parts):
    with pytest.raises(ModelFileError) as info:
        AnomalyModel.load(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for part in parts:
        assert part in message, message
    return message


@pytest.mark.parametrize("name", DEEP)
def test_declared_sizes_larger_than_the_weights_are_refused_before_building(bundles, name, tmp_path):
    path = _copy(bundles, name, tmp_path)

    def huge(doc):
        state = doc["detector_state"]
        if "hidden" in state:
            state["hidden"] = [40000, 40000]
        else:  # sequence_ae declares its layout through its parameters
            state["params"]["latent_dim"] = 40000
            state["latent"] = 40000

    _tamper(path, edit_doc=huge)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _refused(path, "declares")
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 1_000_000  # 40000 x 40000 float32 weights would be 6.4 GB


@pytest.mark.parametrize("name", DEEP)
def test_nan_in_network_weights_is_refused(bundles, name, tmp_path):
    path = _copy(bundles, name, tmp_path)
    arrays = load_file(str(path / "weights.safetensors"))
    target = sorted(k for k in arrays if k.startswith("detector.net.") and k.endswith("weight"))[0]

    def poison(a):
        a.reshape(-1)[0] = np.nan
        return a

    _tamper(path, _set(target, poison))
    _refused(path, target.removeprefix("detector."), "non-finite")


CASES = {
    "iforest NaN threshold": ("iforest", "threshold", lambda a: np.where(np.arange(a.size) % 7 == 0, np.nan, a),
                              "non-finite"),
    "iforest int8 threshold": ("iforest", "threshold", lambda a: a.astype(np.int8), "int8"),
    "iforest child outside": ("iforest", "children_left", lambda a: np.where(a > 0, a + 10**6, a), "outside"),
    "iforest child loops": ("iforest", "children_right", lambda a: np.where(a > 0, 0 * a + 0, a), "outside"),
    "iforest feature outside": ("iforest", "feature", lambda a: np.where(a >= 0, a + 50, a), "column outside"),
    "iforest float children": ("iforest", "children_left", lambda a: a.astype(np.float64), "float64"),
    "ecod offsets outside": ("ecod", "offsets", lambda a: a * 3, "outside"),
    "ecod inf values": ("ecod", "values", lambda a: np.full_like(a, np.inf), "non-finite"),
    "pca NaN components": ("pca", "components", lambda a: a * np.nan, "non-finite"),
    "pca float32 scale": ("pca", "scale", lambda a: a.astype(np.float32), "float32"),
    "ocsvm inf dual_coef": ("ocsvm", "dual_coef", lambda a: a / 0.0, "non-finite"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_tampered_classical_arrays_are_refused_naming_the_array(bundles, case, tmp_path):
    name, array, change, word = case
    path = _copy(bundles, name, tmp_path)
    with np.errstate(all="ignore"):
        _tamper(path, _set(f"detector.{array}", change))
    _refused(path, f"{array}'", word)


def test_nan_training_scores_are_refused(bundles, tmp_path):
    path = _copy(bundles, "ecod", tmp_path)
    _tamper(path, _set("train_scores", lambda a: a * np.nan))
    _refused(path, "train_scores")


def test_untampered_bundles_still_load_and_score(bundles, frame):
    for path in bundles.values():
        scores = AnomalyModel.load(path).score(frame).scores
        assert np.isfinite(scores).all()


def test_non_finite_scores_are_refused_not_counted_as_unflagged(bundles, frame, tmp_path, capsys):
    """Finite weights that overflow (a PCA scale of 1e-300) give infinite scores: score refuses them."""
    path = _copy(bundles, "pca", tmp_path)
    _tamper(path, _set("detector.scale", lambda a: np.full_like(a, 1e-300)))
    model = AnomalyModel.load(path)
    with pytest.raises(AnomalyDeskError, match="not a finite number"):
        model.score(frame)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    code = cli_main(["score", str(data), "--model", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "not a finite number" in err and "flagged" not in err.split("finite")[0]
    assert not out.exists()


def test_report_refuses_a_scores_file_with_non_finite_scores(tmp_path, capsys):
    scores = tmp_path / "scores.csv"
    scores.write_text("key,score,severity,flagged\n1,0.5,50,false\n2,inf,99,false\n3,nan,10,false\n")
    code = cli_main(["report", str(scores), "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "row 3" in err and "column 'score'" in err, err
    assert not (tmp_path / "r.csv").exists()
