"""Model bundles: round trip, atomic save, and refusal of hostile or damaged files."""

from __future__ import annotations

import json
import os
import pickle
import struct

import numpy as np
import pandas as pd
import pytest

from engine import bundle
from engine.errors import ModelFileError
from engine.io import infer_schema
from engine.pipeline import AnomalyModel


@pytest.fixture()
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200),
                         "k": rng.choice(["x", "y"], size=200)})


@pytest.fixture()
def saved(tmp_path, frame):
    model = AnomalyModel("ecod").fit(frame, infer_schema(frame))
    path = tmp_path / "model"
    model.save(path)
    return path


def _doc(path):
    return json.loads((path / "model.json").read_text())


def _write_doc(path, doc):
    (path / "model.json").write_text(json.dumps(doc))


class _Payload:
    """Unpickling this creates a file: the test checks that it never appears."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_bundle_layout_and_metadata(saved):
    assert sorted(p.name for p in saved.iterdir()) == ["model.json", "weights.safetensors"]
    doc = _doc(saved)
    assert doc["format_version"] == bundle.FORMAT_VERSION and doc["detector"] == "ecod"
    for key in ("anomaly-desk", "python", "numpy", "torch", "sklearn"):
        assert key in doc["versions"]
    assert doc["schema"]["columns"] and doc["preprocessing"] and doc["training"]["rows"] == 200


def test_a_pickle_file_in_the_bundle_is_refused_and_never_run(saved, tmp_path):
    marker = tmp_path / "pwned"
    (saved / "extra.pkl").write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ModelFileError, match="pickle"):
        AnomalyModel.load(saved)
    (saved / "extra.pkl").rename(saved / "notes")  # no telling suffix: the content gives it away
    with pytest.raises(ModelFileError, match="pickle"):
        AnomalyModel.load(saved)
    assert not marker.exists()


def test_pickle_payload_in_place_of_the_weights_or_json_is_refused(saved, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(str(marker)))
    weights = (saved / "weights.safetensors").read_bytes()
    (saved / "weights.safetensors").write_bytes(payload)
    with pytest.raises(ModelFileError):
        AnomalyModel.load(saved)
    (saved / "weights.safetensors").write_bytes(weights)
    good = (saved / "model.json").read_bytes()
    (saved / "model.json").write_bytes(payload)
    with pytest.raises(ModelFileError, match="pickle"):
        AnomalyModel.load(saved)
    (saved / "model.json").write_bytes(good)
    AnomalyModel.load(saved)  # intact again
    assert not marker.exists()


def test_path_traversal_in_names_is_refused(saved):
    doc = _doc(saved)
    doc["files"]["weights"] = "../../etc/passwd"
    _write_doc(saved, doc)
    with pytest.raises(ModelFileError, match="unsafe"):
        AnomalyModel.load(saved)
    with pytest.raises(ModelFileError, match="unsafe"):
        bundle.save_bundle(saved.parent / "x", {}, {"../evil": np.zeros(2)})


def _rewrite_header(path, mutate):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    mutate(header)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def test_oversized_tensor_is_refused_before_reading(saved):
    def huge(header):
        name = next(k for k in header if k != "__metadata__")
        header[name]["shape"] = [1 << 40]
    _rewrite_header(saved / "weights.safetensors", huge)
    with pytest.raises(ModelFileError, match="oversized"):
        AnomalyModel.load(saved)


def test_shape_mismatch_with_metadata_is_refused(saved):
    doc = _doc(saved)
    name = next(iter(doc["arrays"]))
    doc["arrays"][name]["shape"] = [3, 3]
    _write_doc(saved, doc)
    with pytest.raises(ModelFileError, match="shape"):
        AnomalyModel.load(saved)


def test_tensor_not_fitting_its_file_is_refused(saved):
    def lie(header):
        name = next(k for k in header if k != "__metadata__")
        header[name]["data_offsets"][1] += 10 ** 6
    _rewrite_header(saved / "weights.safetensors", lie)
    with pytest.raises(ModelFileError):
        AnomalyModel.load(saved)


@pytest.mark.parametrize("key,value", [("format_version", "1"), ("params", [1, 2]), ("seed", "zero"),
                                       ("schema", "columns"), ("detector", 7), ("files", None),
                                       ("arrays", [])])
def test_json_with_wrong_types_is_refused(saved, key, value):
    doc = _doc(saved)
    doc[key] = value
    _write_doc(saved, doc)
    with pytest.raises(ModelFileError, match=key):
        AnomalyModel.load(saved)


def test_inconsistent_detector_state_is_refused(saved):
    doc = _doc(saved)
    doc["detector_state"]["n_features_in_"] = 99
    _write_doc(saved, doc)
    with pytest.raises(ModelFileError):
        AnomalyModel.load(saved)


def test_unknown_format_version_and_altered_weights_are_refused(saved):
    doc = _doc(saved)
    doc["format_version"] = 99
    _write_doc(saved, doc)
    with pytest.raises(ModelFileError, match="version 99"):
        AnomalyModel.load(saved)
    doc["format_version"] = bundle.FORMAT_VERSION
    _write_doc(saved, doc)
    raw = bytearray((saved / "weights.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (saved / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum"):
        AnomalyModel.load(saved)


def test_missing_or_wrong_paths_are_clear(tmp_path):
    with pytest.raises(ModelFileError, match="no such model"):
        AnomalyModel.load(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFileError, match="directory"):
        AnomalyModel.load(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="model.json"):
        AnomalyModel.load(tmp_path / "empty")


def test_interrupted_save_leaves_the_previous_version_usable(saved, frame, monkeypatch):
    before = AnomalyModel.load(saved).score(frame).scores
    newer = AnomalyModel("pca").fit(frame, infer_schema(frame))
    real_replace = os.replace
    calls = []

    def killed_after_first_rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(bundle.os, "replace", killed_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        newer.save(saved)
    monkeypatch.undo()
    np.testing.assert_array_equal(AnomalyModel.load(saved).score(frame).scores, before)
    # a kill while the new files are written never touches the old bundle
    def killed_while_writing(*args, **kwargs):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr("safetensors.numpy.save_file", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        newer.save(saved)
    monkeypatch.undo()
    np.testing.assert_array_equal(AnomalyModel.load(saved).score(frame).scores, before)
    assert not [p for p in saved.parent.iterdir() if ".tmp-" in p.name]
    newer.save(saved)  # a later save completes and cleans up
    assert AnomalyModel.load(saved).detector == "pca"
    assert not (saved.parent / "model.previous").exists()
