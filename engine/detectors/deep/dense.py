"""Helpers shared by the deep detectors that work on the dense encoding ``[numeric | one-hot]``
(BiGAN, sequence autoencoder): output heads with one softmax per categorical block, per-feature
reconstruction terms, per-column aggregation and the bits of persistence every torch detector needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from engine.detectors.state_checks import build_matching
from engine.errors import SchemaMismatchError
from engine.training import TrainHistory, choose_device


def dense_inputs(fm) -> np.ndarray:
    """The encoded matrix ``[numeric | one-hot]`` as contiguous float32 with non-finite values zeroed."""
    values = np.asarray(fm.values, dtype=np.float32)
    if not np.isfinite(values).all():
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(values)


def block_outputs(raw: torch.Tensor, n_numeric: int, cards: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a head's raw output (..., n_numeric + sum(cards)) into the dense reconstruction (numeric
    values, then each categorical block's probabilities) and the log-probabilities of the blocks
    (..., sum(cards)). Works on any leading shape (rows, or rows x time steps)."""
    if not cards:
        return raw, raw[..., :0]
    parts, logs, start = [raw[..., :n_numeric]], [], n_numeric
    for c in cards:
        lp = torch.log_softmax(raw[..., start: start + c], dim=-1)
        logs.append(lp)
        parts.append(lp.exp())
        start += c
    return torch.cat(parts, dim=-1), torch.cat(logs, dim=-1)


def feature_terms(dense_hat: torch.Tensor, log_probs: torch.Tensor, x: torch.Tensor, n_numeric: int,
                  kind: str = "nll") -> torch.Tensor:
    """Per-encoded-feature terms (..., n_features), >= 0. Numeric features: the squared error.
    Categorical blocks: ``"nll"`` puts ``-log p(observed level)`` on the observed level's position
    (the block sums to the column's negative log-likelihood); ``"mse"`` the squared error of the
    probabilities against the one-hot vector."""
    se = (dense_hat - x) ** 2
    if kind == "mse" or log_probs.shape[-1] == 0:
        return se
    cat = -log_probs * x[..., n_numeric:]
    return torch.cat([se[..., :n_numeric], cat], dim=-1)


def to_columns(per_feature: np.ndarray, source_index: np.ndarray, n_columns: int) -> np.ndarray:
    """Sum per-encoded-feature terms (n, n_features) into the original columns (n, n_columns)."""
    out = np.zeros((per_feature.shape[0], n_columns), dtype=np.float64)
    if per_feature.shape[1]:
        np.add.at(out.T, np.asarray(source_index, dtype=np.int64), per_feature.astype(np.float64).T)
    return np.maximum(out, 0.0)


def shares(excess: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Rows normalised to 1: the excess terms where a row has some, else its raw terms, else equal."""
    cols = np.where(excess.sum(axis=1, keepdims=True) > 1e-12, excess, raw)
    total = cols.sum(axis=1, keepdims=True)
    uniform = np.full_like(cols, 1.0 / max(cols.shape[1], 1))
    return np.where(total > 1e-12, cols / np.maximum(total, 1e-12), uniform)


def check_layout(fm, n_numeric: int, cards: list[int], name: str) -> None:
    if fm.numeric.shape[1] != n_numeric or list(fm.cardinalities) != list(cards):
        raise SchemaMismatchError(
            f"the encoded data ({fm.numeric.shape[1]} numeric features, levels {list(fm.cardinalities)}) "
            f"does not match what the {name} was trained on ({n_numeric} numeric features, levels {list(cards)})")


def check_weights(sample_weight, n_rows: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
    if w.shape[0] != n_rows or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError("sample_weight must hold one finite, non-negative weight per row")
    if not (w > 0).any():
        raise ValueError("no rows left to train on: every sample weight is 0")
    return w


def loading_device(requested: str) -> torch.device:
    """The device a loaded model runs on: as asked, or the CPU when a GPU model is opened without one."""
    try:
        return choose_device(requested)
    except ValueError:
        return torch.device("cpu")


def history_from(meta: dict[str, Any]) -> TrainHistory:
    h = meta.get("history") or {}
    return TrainHistory(**{k: v for k, v in h.items() if k in TrainHistory.__dataclass_fields__})


def state_of(det, layout: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A fitted torch detector's state: JSON (name, parameters, input layout, ``layout``, training
    history) and arrays (the network's weights and the named calibration ``arrays``)."""
    meta = {"detector": det.name, "params": det.get_params(), "n_numeric": det.n_numeric_,
            "cardinalities": list(det.cardinalities_), **layout, "history": det.history_.to_dict()}
    return meta, {**net_state(det.net_), **arrays}


def unfitted_from(cls, meta: dict[str, Any]):
    """A torch detector made from a state's parameters, with its input layout restored."""
    det = cls(**meta["params"])
    det.n_numeric_ = int(meta["n_numeric"])
    det.cardinalities_ = [int(c) for c in meta["cardinalities"]]
    det.n_features_in_ = det.n_numeric_ + sum(det.cardinalities_)
    return det


def attach_net(det, build: Callable[[], torch.nn.Module], arrays: dict[str, np.ndarray],
               meta: dict[str, Any]) -> None:
    """Build the network (only once its declared sizes match the saved weights: ``build_matching``), load
    the weights and make it the detector's, on the device it can run on (a model trained on a GPU opens
    on the CPU without one); the training history comes back too."""
    net = build_matching(build, arrays)
    load_net_state(net, arrays)
    det.device_ = loading_device(det.device)
    det.net_ = net.to(det.device_).eval()
    det.history_ = history_from(meta)


def net_state(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {f"net.{k}": v.detach().cpu().numpy() for k, v in net.state_dict().items()}


def load_net_state(net: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    state = {k[len("net."):]: torch.as_tensor(np.array(v)) for k, v in arrays.items() if k.startswith("net.")}
    net.load_state_dict(state, strict=True)
