"""Turning raw detector scores into what analysts read: severity 0-100 and the top contributing columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def severity(scores: np.ndarray, train_scores_sorted: np.ndarray) -> np.ndarray:
    """Percentile (0-100) of each score among the training scores: 99 means the record scores
    higher than 99% of the rows the model learnt from. Comparable across models and detectors.
    ``train_scores_sorted`` must be sorted ascending. Non-finite scores get 100 (the model could
    not place them: they are certainly unusual)."""
    scores = np.asarray(scores, dtype=np.float64)
    ref = np.asarray(train_scores_sorted, dtype=np.float64)
    if ref.size == 0:
        return np.full(scores.shape, np.nan)
    # ties count half, so a constant model gives 50 rather than 100
    below = np.searchsorted(ref, scores, side="left")
    at_or_below = np.searchsorted(ref, scores, side="right")
    sev = 100.0 * (below + at_or_below) / (2.0 * ref.size)
    sev[~np.isfinite(scores)] = 100.0
    return sev


def top_features(contributions: np.ndarray, columns: Sequence[str], k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each row, the ``k`` columns with the largest shares: (names per rank, shares per rank)."""
    contributions = np.asarray(contributions, dtype=np.float64)
    k = min(k, contributions.shape[1] if contributions.ndim == 2 else 0)
    if k == 0 or len(contributions) == 0:
        return [], []
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    names = np.asarray(list(columns), dtype=object)
    rows = np.arange(len(contributions))[:, None]
    shares = contributions[rows, order]
    return [names[order[:, r]] for r in range(k)], [shares[:, r] for r in range(k)]
