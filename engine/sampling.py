"""A uniform sample of a file larger than memory, drawn while streaming it once (reservoir sampling).

``train --sample N`` learns from N rows of a file that does not fit in memory: every row has the same
chance N / rows of being kept, whatever its position, and memory holds N rows plus one chunk. Algorithm R
(Vitter 1985), vectorised per chunk: row i (0-based, over the whole file) draws a slot in 0..i and
replaces that slot's row when the slot is below N; within a chunk a later row that draws the same slot
wins, as it would one row at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def reservoir_sample(chunks: Iterable[pd.DataFrame], n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows drawn uniformly from all rows of ``chunks`` (all of them when there are fewer), in file
    order, indexed by their row number in the whole stream."""
    if n < 1:
        raise ValueError("the sample needs at least one row")
    rng = np.random.default_rng(seed)
    kept: pd.DataFrame | None = None  # the reservoir: row k holds slot k
    seen = 0
    for chunk in chunks:
        m = len(chunk)
        if m == 0:
            continue
        chunk = chunk.set_axis(pd.RangeIndex(seen, seen + m))
        fill = max(0, min(m, n - seen))  # the first n rows fill the reservoir in order
        parts = [kept] if kept is not None else []
        if fill:
            parts.append(chunk.iloc[:fill])
        rest = np.arange(fill, m)
        if rest.size:
            slots = rng.integers(0, seen + rest + 1)  # row i draws 0..i
            hit = slots < n
            rows, slots = rest[hit], slots[hit]
            if rows.size:
                # the last row of this chunk to draw a slot is the one left in it
                last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
                rows, slots = rows[last], slots[last]
                base = pd.concat(parts) if len(parts) > 1 else parts[0]
                order = np.arange(len(base))
                order[slots] = len(base) + np.arange(len(rows))
                kept = pd.concat([base, chunk.iloc[rows]]).iloc[order]
                seen += m
                continue
        kept = pd.concat(parts) if len(parts) > 1 else parts[0]
        seen += m
    if kept is None:
        return pd.DataFrame()
    return kept.sort_index()
