"""What a saved detector's arrays must hold before a model is built from them.

A bundle's checksum sits beside its weights, so whoever edits the weights can recompute it: the
checksum proves nothing about a file from someone else. Before ``from_state`` runs, ``check_state``
refuses arrays of a dtype the detector does not save (thresholds turned into int8), non-finite
numbers (NaN in a threshold or a weight), and indices that point outside the model (tree children,
feature numbers, ECOD offsets); ``build_matching`` refuses a network whose declared sizes (``hidden:
[40000, 40000]``) disagree with the weights in the file, after building it on torch's ``meta``
device, which allocates nothing. Every refusal is a ``ModelFileError`` naming the array.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from engine.errors import ModelFileError

F64, I64, FLOAT = "float64", "int64", "float"  # FLOAT: any floating dtype (nets may be saved in half precision)
_DEEP = {"numeric_scale": FLOAT, "column_baseline": FLOAT, "input_offset": FLOAT, "reference": FLOAT,
         "feature_scale": FLOAT}
#: detector -> array -> the dtype its get_state writes; arrays not listed must be network weights ("net.")
EXPECTED: dict[str, dict[str, str]] = {
    "iforest": {"children_left": I64, "children_right": I64, "feature": I64, "threshold": F64,
                "node_samples": I64, "tree_offsets": I64},
    "ocsvm": {"support_vectors": F64, "dual_coef": F64},
    "pca": {"mean": F64, "scale": F64, "components": F64, "explained_variance": F64},
    "ecod": {"values": F64, "cum_weight": F64, "offsets": I64, "skew_sign": F64},
    "auto": {"center": F64, "scale": F64, "weights": F64, "quantiles": F64},
    "knn": {"reference": F64, "low": F64, "span": F64},
    "lof": {"reference": F64, "low": F64, "span": F64, "k_distance": F64, "lrd": F64},
    "autoencoder": _DEEP, "vae": _DEEP, "bigan": _DEEP, "sequence_ae": _DEEP,
}


def _fail(array: str, message: str) -> None:
    raise ModelFileError(f"array '{array}' {message}: the weights were altered or damaged; refused")


def _check_dtype(name: str, array: np.ndarray, expected: str) -> None:
    if expected == FLOAT:
        ok = array.dtype.kind == "f"
    else:
        ok = array.dtype == np.dtype(expected)
    if not ok:
        _fail(name, f"holds {array.dtype}, the detector saves {'floating point' if expected == FLOAT else expected}")


def _check_arrays(detector: str, arrays: Mapping[str, np.ndarray], prefix: str) -> None:
    expected = EXPECTED.get(detector, {})
    for name, array in arrays.items():
        full = prefix + name
        if name in expected:
            _check_dtype(full, array, expected[name])
        elif name.startswith("net."):
            _check_dtype(full, array, FLOAT)
        elif detector != "auto":
            _fail(full, f"is not part of a saved '{detector}' detector")
        if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
            bad = int(np.flatnonzero(~np.isfinite(array.reshape(-1)))[0])
            _fail(full, f"holds a non-finite value (NaN or infinity) at flat index {bad}")


def _check_iforest(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str) -> None:
    """Each tree's children lie inside that tree and after their parent (so every walk ends at a leaf),
    split features are columns of the model, node sizes are positive."""
    need = EXPECTED["iforest"]
    if set(need) - set(arrays):
        _fail(prefix + sorted(set(need) - set(arrays))[0], "is missing")
    offsets, left, right = arrays["tree_offsets"], arrays["children_left"], arrays["children_right"]
    feature, samples = arrays["feature"], arrays["node_samples"]
    n_nodes = left.shape[0]
    if (offsets.ndim != 1 or offsets.size < 2 or offsets[0] != 0 or offsets[-1] != n_nodes
            or np.any(np.diff(offsets) <= 0)):
        _fail(prefix + "tree_offsets", "does not split the nodes into trees")
    if any(a.shape != (n_nodes,) for a in (right, feature, samples, arrays["threshold"])):
        _fail(prefix + "children_right", "does not have one entry per node")
    tree = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    local = np.arange(n_nodes) - offsets[tree]
    size = np.diff(offsets)[tree]
    internal = left >= 0
    if np.any(internal != (right >= 0)):
        _fail(prefix + "children_right", "disagrees with children_left on which nodes are leaves")
    for name, child in (("children_left", left), ("children_right", right)):
        c = child[internal]
        if np.any(c <= local[internal]) or np.any(c >= size[internal]):
            _fail(prefix + name, "points outside its tree (or back up it)")
    n_features = meta.get("n_features_in_")
    f = feature[internal]
    if not isinstance(n_features, int) or np.any(f < 0) or np.any(f >= n_features):
        _fail(prefix + "feature", f"names a column outside the model's {n_features} features")
    if np.any(samples < 1):
        _fail(prefix + "node_samples", "holds a node with no samples")


def _check_ecod(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str) -> None:
    offsets, values = arrays.get("offsets"), arrays.get("values")
    if offsets is None or values is None:
        _fail(prefix + "offsets", "is missing")
    if (offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != values.shape[0]
            or np.any(np.diff(offsets) < 0)):
        _fail(prefix + "offsets", "points outside the saved values")


_EXTRA: dict[str, Callable[[Mapping[str, Any], Mapping[str, np.ndarray], str], None]] = {
    "iforest": _check_iforest, "ecod": _check_ecod}


def check_state(detector: str, meta: Any, arrays: Mapping[str, np.ndarray], prefix: str = "detector.") -> None:
    """Refuse ``arrays`` (a detector's saved state) that the detector would not have written."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    _check_arrays(detector, arrays, prefix)
    if detector in _EXTRA:
        _EXTRA[detector](meta if isinstance(meta, dict) else {}, arrays, prefix)
    if detector == "auto" and isinstance(meta, dict) and isinstance(meta.get("members"), list):
        for i, member in enumerate(meta["members"]):
            if not isinstance(member, dict) or not isinstance(member.get("name"), str):
                raise ModelFileError(f"model.json: ensemble member {i} is described with wrong types")
            sub = {k[len(f"m{i}."):]: v for k, v in arrays.items() if k.startswith(f"m{i}.")}
            check_state(member["name"], member.get("meta"), sub, prefix=f"{prefix}m{i}.")
        members = len(meta["members"])
        stray = [k for k in arrays if k not in EXPECTED["auto"]
                 and not any(k.startswith(f"m{i}.") for i in range(members))]
        if stray:
            _fail(prefix + stray[0], "is not part of a saved 'auto' detector")


def build_matching(build: Callable[[], Any], arrays: Mapping[str, np.ndarray], prefix: str = "net.") -> Any:
    """``build()`` (a torch module) after checking, on the ``meta`` device (no memory), that the sizes the
    model declares give exactly the weights in the file: names and shapes. A bundle declaring layers of
    40,000 units over weights of 64 is refused before anything is allocated."""
    import torch

    with torch.device("meta"):
        skeleton = build()
    expected = {prefix + k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    given = {k: tuple(np.shape(v)) for k, v in arrays.items() if k.startswith(prefix)}
    for name in sorted(set(expected) | set(given)):
        if name not in given:
            raise ModelFileError(f"the model declares a layer '{name}' that the weights file does not hold; "
                                 "refused")
        if name not in expected:
            raise ModelFileError(f"array '{name}' in the weights file is not part of the network the model "
                                 "declares; refused")
        if expected[name] != given[name]:
            raise ModelFileError(f"the model declares sizes giving '{name}' the shape {list(expected[name])} "
                                 f"but the weights file holds {list(given[name])}; refused before building")
    del skeleton
    return build()
