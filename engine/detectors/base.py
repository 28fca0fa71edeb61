"""The detector interface every model follows (scikit-learn/PyOD conventions).

A detector works on an encoded ``FeatureMatrix`` (engine.features). ``__init__`` only stores
parameters; ``fit`` learns normal behaviour; ``score_samples`` returns anomaly scores,
**higher = more anomalous**; fitted attributes end in ``_``. State is saved as JSON-able metadata
plus a dict of numpy arrays (written as safetensors by engine.bundle), never pickled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from engine.errors import NotFittedError

ProgressCallback = Callable[..., None]  # progress(fraction, message, **metrics)
StopCallback = Callable[[], bool]


class Detector:
    name: ClassVar[str] = "base"
    #: the fitted attribute whose presence means "fitted"
    _fitted_attr: ClassVar[str] = "n_features_in_"

    def get_params(self) -> dict[str, Any]:
        return dict(self.__dict__.get("_params", {}))

    def fit(self, fm, *, sample_weight: np.ndarray | None = None, progress: ProgressCallback | None = None,
            should_stop: StopCallback | None = None) -> Detector:
        """Learn normal behaviour from ``fm`` (a FeatureMatrix). ``sample_weight`` (n,) >= 0: rows with
        weight 0 are not learnt as normal (confirmed anomalies); weights > 1 stress confirmed normals."""
        raise NotImplementedError

    def score_samples(self, fm) -> np.ndarray:
        """Anomaly score per row, float64, higher = more anomalous."""
        raise NotImplementedError

    def feature_contributions(self, fm) -> np.ndarray:
        """(n_rows, len(fm.source_columns)) non-negative shares of each original column in the row's
        score; rows sum to 1 (a categorical column's one-hot block counts as one column)."""
        raise NotImplementedError

    def expected_values(self, fm) -> np.ndarray | None:
        """The model's reconstruction/expectation in the encoded feature space (n_rows, n_features),
        or None when the method has none."""
        return None

    # -- persistence: JSON metadata + named arrays, no pickle --------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Detector:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")
