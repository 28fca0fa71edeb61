"""Reservoir sampling over chunks: uniform over the whole stream, bounded by the sample size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.sampling import reservoir_sample


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield pd.DataFrame({"row": np.arange(start, min(n, start + size))})


def test_every_row_has_the_same_chance_whatever_its_chunk():
    counts = np.zeros(1000)
    for seed in range(400):
        sample = reservoir_sample(_chunks(1000, 128), 50, seed=seed)
        assert len(sample) == 50 and sample["row"].is_unique
        assert (sample.index.to_numpy() == sample["row"].to_numpy()).all()  # file order, file row numbers
        counts[sample["row"].to_numpy()] += 1
    # expected 20 per row; the first and the last chunks are drawn like the middle ones
    by_decile = counts.reshape(10, 100).mean(axis=1)
    assert np.all(np.abs(by_decile - 20) < 2.5), by_decile


def test_a_short_stream_is_kept_whole_and_the_seed_decides():
    assert reservoir_sample(_chunks(30, 7), 100)["row"].tolist() == list(range(30))
    a, b = reservoir_sample(_chunks(500, 64), 20, seed=1), reservoir_sample(_chunks(500, 64), 20, seed=1)
    assert a.equals(b)
