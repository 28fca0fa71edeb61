"""Detector registry: ``make_detector(name, **params)``.

Modules that need torch (autoencoder, vae, bigan, sequence_ae) are imported only when such a detector is asked for, so
importing the engine (and the GUI) stays free of torch.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from engine.detectors.base import Detector
from engine.errors import AnomalyDeskError

# name -> (module, class name); the module is imported on first use
_REGISTRY: dict[str, tuple[str, str]] = {
    "auto": ("engine.detectors.ensemble", "AutoDetector"),
    "autoencoder": ("engine.detectors.autoencoder", "AutoencoderDetector"),
    "vae": ("engine.detectors.vae", "VAEDetector"),
    "bigan": ("engine.detectors.bigan", "BiGANDetector"),
    "sequence_ae": ("engine.detectors.sequence", "SequenceAutoencoderDetector"),
    "iforest": ("engine.detectors.classical", "IsolationForestDetector"),
    "ocsvm": ("engine.detectors.classical", "OCSVMDetector"),
    "pca": ("engine.detectors.classical", "PCADetector"),
    "ecod": ("engine.detectors.classical", "ECODDetector"),
    "knn": ("engine.detectors.neighbors", "KNNDetector"),
    "lof": ("engine.detectors.neighbors", "LOFDetector"),
}

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


def accepted_params(cls: type[Detector], params: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``params`` that ``cls.__init__`` accepts (``seed``/``device`` are offered to all
    detectors; only those that take them receive them)."""
    sig = inspect.signature(cls.__init__)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in sig.parameters}


def make_detector(name: str, **params: Any) -> Detector:
    """A new, unfitted detector. Unknown parameters raise a clear error, except ``seed`` and
    ``device``, which are dropped for detectors that do not use them."""
    cls = detector_class(name)
    kept = accepted_params(cls, params)
    unknown = sorted(set(params) - set(kept) - {"seed", "device"})
    if unknown:
        raise AnomalyDeskError(f"detector '{name}' has no parameter(s): {', '.join(unknown)}")
    return cls(**kept)


def available_detectors() -> list[str]:
    """Names whose module can be imported in this build (deep models need torch)."""
    names = []
    for name in DETECTOR_NAMES:
        try:
            detector_class(name)
        except AnomalyDeskError:
            continue
        names.append(name)
    return names
