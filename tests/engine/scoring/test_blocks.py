"""Scoring an in-memory table in row blocks (the GUI's training job) gives the one-shot result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import Cancelled
from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema
from engine.scoring.blocks import score_in_blocks


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.lognormal(4, 0.5, n).round(2), "qty": rng.integers(1, 9, n).astype(float),
                         "shop": rng.choice(["north", "south", "east"], n)})


SCHEMA = Schema(columns=[ColumnInfo("amount", Role.NUMERIC, "t"), ColumnInfo("qty", Role.NUMERIC, "t"),
                         ColumnInfo("shop", Role.CATEGORICAL, "t")])


@pytest.mark.parametrize("detector", ["pca", "iforest", "ecod", "auto"])
def test_blocks_give_the_same_result_as_one_call(detector):
    frame = _frame()
    params = {"n_estimators": 20} if detector == "iforest" else {}
    model = AnomalyModel(detector, params=params).fit(frame.head(300), SCHEMA)
    whole = model.score(frame)
    seen = []
    blocks = score_in_blocks(model, frame, block_rows=97, progress=lambda f, m="", **k: seen.append(f),
                             pause_s=0.0)
    np.testing.assert_allclose(blocks.scores, whole.scores)
    np.testing.assert_allclose(blocks.severity, whole.severity)
    np.testing.assert_allclose(blocks.contributions, whole.contributions)
    assert blocks.columns == whole.columns
    if whole.expected is None:
        assert blocks.expected is None
    else:
        pd.testing.assert_frame_equal(blocks.expected.reset_index(drop=True), whole.expected.reset_index(drop=True))
    assert set(blocks.member_scores) == set(whole.member_scores)
    assert seen[-1] == 1.0 and len(seen) == 5


def test_blocks_stop_when_asked():
    frame = _frame()
    model = AnomalyModel("pca").fit(frame, SCHEMA)
    with pytest.raises(Cancelled):
        score_in_blocks(model, frame, block_rows=50, should_stop=lambda: True)
