"""Detector registry: ``make_detector(name, **params)``.

Modules that need torch (autoencoder, vae, bigan, sequence_ae) are imported only when such a detector is asked for,
so importing the engine (and the GUI) stays free of torch. Each detector's parameters are declared in
engine.detectors.params, which ``make_detector`` checks them against.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from engine.detectors.base import Detector
from engine.detectors.params import PARAMS, params_of, validate
from engine.errors import AnomalyDeskError

# name -> (module, class name); the module is imported on first use
_REGISTRY: dict[str, tuple[str, str]] = {
    "auto": ("engine.detectors.ensemble", "AutoDetector"),
    "autoencoder": ("engine.detectors.deep.autoencoder", "AutoencoderDetector"),
    "vae": ("engine.detectors.deep.vae", "VAEDetector"),
    "bigan": ("engine.detectors.deep.bigan", "BiGANDetector"),
    "sequence_ae": ("engine.detectors.deep.sequence", "SequenceAutoencoderDetector"),
    "iforest": ("engine.detectors.classical", "IsolationForestDetector"),
    "ocsvm": ("engine.detectors.classical", "OCSVMDetector"),
    "pca": ("engine.detectors.classical", "PCADetector"),
    "ecod": ("engine.detectors.classical", "ECODDetector"),
    "knn": ("engine.detectors.neighbors", "KNNDetector"),
    "lof": ("engine.detectors.neighbors", "LOFDetector"),
}
assert set(_REGISTRY) == set(PARAMS), "every detector declares its parameters in engine.detectors.params"

DETECTOR_NAMES: tuple[str, ...] = tuple(_REGISTRY)
#: detectors that need torch (deep models)
TORCH_DETECTORS: frozenset[str] = frozenset({"autoencoder", "vae", "bigan", "sequence_ae"})


def detector_class(name: str) -> type[Detector]:
    if name not in _REGISTRY:
        raise AnomalyDeskError(f"unknown detector '{name}': choose one of {', '.join(DETECTOR_NAMES)}")
    module_name, class_name = _REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise AnomalyDeskError(f"detector '{name}' is not available in this build ({exc})") from None


def accepted_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``params`` that detector ``name`` declares (``seed``/``device``/``epochs`` are offered
    to all detectors; only those that take them receive them)."""
    declared = {p.name for p in params_of(name)}
    return {k: v for k, v in params.items() if k in declared}


def make_detector(name: str, **params: Any) -> Detector:
    """A new, unfitted detector. Unknown parameters and values outside a parameter's range raise a
    clear error, except ``seed`` and ``device``, which are dropped for detectors that do not use them."""
    if name not in _REGISTRY:
        raise AnomalyDeskError(f"unknown detector '{name}': choose one of {', '.join(DETECTOR_NAMES)}")
    declared = {p.name for p in params_of(name)}
    kept = {k: v for k, v in params.items() if k in declared or k not in ("seed", "device")}
    validate(name, kept)  # unknown names and values out of range, named
    return detector_class(name)(**kept)


def torch_available() -> bool:
    """Whether torch is installed, found without importing it."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def available_detectors() -> list[str]:
    """Names this build can run (deep models need torch), decided without importing torch."""
    has_torch = torch_available()
    return [name for name in DETECTOR_NAMES if has_torch or name not in TORCH_DETECTORS]
