"""Scoring a large in-memory table in row blocks, for callers that share the interpreter with a GUI.

``AnomalyModel.score`` on a million rows runs long steps that hold the GIL throughout: converting
text columns to Python strings (pandas/pyarrow ``to_numpy(dtype=object)``), ``Index.get_indexer``
over a million strings (which builds a string array first), building object arrays of expected
values. Measured with a faulthandler watchdog on the window's training job (1M-row ledger, pca):
single holds of 250-540 ms, each of which freezes the event loop of the GUI thread. Every score is a
function of its own row and the fitted model only (``engine.scoring.files.score_file`` relies on the same
fact), so scoring in blocks gives the same result; between blocks the worker sleeps a moment so
the GUI thread, waiting for the GIL, takes it. Blocks also bound the temporary one-hot matrices
(a 1M x 300 float64 matrix is 2.4 GB; a 20k-row block 48 MB).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from engine.errors import stop_if_asked

DEFAULT_BLOCK_ROWS = 20_000
PAUSE_S = 0.002  # between blocks: the GUI thread gets the GIL (the switch interval alone does not
# hand it over while a C call holds it)


def score_in_blocks(model, frame: pd.DataFrame, *, block_rows: int = DEFAULT_BLOCK_ROWS,
                    progress: Callable[..., None] | None = None, should_stop: Callable[[], bool] | None = None,
                    pause_s: float = PAUSE_S):
    """``model.score(frame)`` computed ``block_rows`` rows at a time (same ScoreResult)."""
    from engine.pipeline import ScoreResult

    n = len(frame)
    if n <= block_rows:
        return model.score(frame)
    parts = []
    for start in range(0, n, block_rows):
        stop_if_asked(should_stop, "scoring was cancelled")
        parts.append(model.score(frame.iloc[start:start + block_rows]))
        if progress is not None:
            progress(min(1.0, (start + block_rows) / n), f"scored {min(n, start + block_rows):,} of {n:,} records")
        time.sleep(pause_s)
    first = parts[0]
    scores = _concat([p.scores for p in parts], pause_s)
    severity = _concat([p.severity for p in parts], pause_s)
    contributions = _concat([p.contributions for p in parts], pause_s)
    expected = None
    if all(p.expected is not None for p in parts):
        expected = pd.concat([p.expected for p in parts], ignore_index=True)
    members = None
    if first.member_scores is not None and all(p.member_scores is not None for p in parts):
        members = {k: _concat([p.member_scores[k] for p in parts], pause_s) for k in first.member_scores}
    return ScoreResult(scores=scores, severity=severity, contributions=contributions, columns=list(first.columns),
                       expected=expected, member_scores=members)


def _concat(arrays: list[np.ndarray], pause_s: float) -> np.ndarray:
    """np.concatenate, filled block by block (a large copy is one C call that keeps the GIL)."""
    arrays = [np.asarray(a) for a in arrays]
    total = sum(a.shape[0] for a in arrays)
    out = np.empty((total, *arrays[0].shape[1:]), dtype=np.result_type(*arrays))
    at = 0
    for i, a in enumerate(arrays):
        out[at:at + a.shape[0]] = a
        at += a.shape[0]
        if i % 10 == 9:
            time.sleep(pause_s / 2)
    return out
