"""The declared parameters (engine.detectors.params): one list that the constructors, the form, the
command line, validation and the bundle agree on."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.detectors import DETECTOR_NAMES, available_detectors, detector_class, make_detector
from engine.detectors.params import PARAMS, params_of, parse_assignments, validate
from engine.errors import AnomalyDeskError, ModelFileError


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_declared_names_and_defaults_are_the_constructors(name):
    pytest.importorskip("torch")
    signature = inspect.signature(detector_class(name).__init__).parameters.values()
    constructor = [(p.name, p.default) for p in signature if p.name != "self"]
    declared = [(p.name, p.default) for p in params_of(name)]
    assert declared == constructor


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_get_params_follows_the_constructor(name):
    pytest.importorskip("torch")
    det = detector_class(name)()
    assert list(det.get_params()) == [p.name for p in params_of(name)]
    assert make_detector(name, **{p.name: p.default for p in params_of(name)}).get_params() == det.get_params()


def test_every_declared_default_passes_its_own_check():
    for name, params in PARAMS.items():
        validate(name, {p.name: p.default for p in params})


def test_available_detectors_imports_no_torch():
    code = ("import sys; from engine.detectors import available_detectors; names = available_detectors(); "
            "from ui.detector_form import param_specs; [param_specs(n) for n in names]; "
            "assert 'torch' not in sys.modules, 'torch was imported'; print(','.join(names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == available_detectors()


@pytest.mark.parametrize("name, params, words", [
    ("autoencoder", {"learning_rate": 0.0}, ["learning_rate", "0 < x"]),
    ("autoencoder", {"activation": "swish"}, ["activation", "relu", "tanh"]),
    ("ocsvm", {"nu": 1.5}, ["nu", "x <= 1"]),
    ("iforest", {"n_estimators": 2.5}, ["n_estimators", "an integer"]),
    ("auto", {"members": ["iforest", "nope"]}, ["members", "detector names"]),
    ("auto", {"member_params": {"iforest": {"n_estimators": 0}}}, ["iforest", "n_estimators", "1 <= x"]),
    ("pca", {"latent_dim": 3}, ["no parameter", "latent_dim", "variance"]),
])
def test_a_bad_value_is_refused_naming_the_parameter_and_what_it_takes(name, params, words):
    with pytest.raises(AnomalyDeskError) as err:
        make_detector(name, **params)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_seed_and_device_are_offered_to_every_detector():
    assert make_detector("ecod", seed=3, device="cpu").get_params() == {"tails": "both", "seed": 3}


def test_command_line_assignments_are_parsed_and_checked():
    assert parse_assignments("autoencoder", ["hidden_layers=64-16", "learning_rate=3e-3", "batch_norm=true",
                                             "latent_dim=auto", "masking=false"]) == {
        "hidden_layers": [64, 16], "learning_rate": 3e-3, "batch_norm": True, "latent_dim": None, "masking": "false"}
    assert parse_assignments("ocsvm", ["gamma=scale", "nu=0.1"]) == {"gamma": "scale", "nu": 0.1}
    assert parse_assignments("auto", ["members=iforest, ecod"]) == {"members": ["iforest", "ecod"]}
    for bad in (["epochs"], ["epochs=0"], ["latent_size=8"], ["batch_norm=maybe"]):
        with pytest.raises(AnomalyDeskError):
            parse_assignments("autoencoder", bad)


def test_a_bundle_with_a_parameter_out_of_range_is_refused(tmp_path):
    from engine.io import infer_schema
    from engine.pipeline import AnomalyModel

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 3)), columns=list("abc"))
    out = AnomalyModel("pca").fit(frame, infer_schema(frame)).save(tmp_path / "m")
    doc = json.loads((out / "model.json").read_text())
    doc["detector_state"]["params"]["variance"] = 7.0
    (out / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="variance"):
        AnomalyModel.load(out)
