"""engine.scoring.table.top_records: the top rows of a scores file, streamed, as the original columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.io import load
from engine.pipeline import AnomalyModel
from engine.scoring.files import score_file
from engine.scoring.table import top_records


def test_top_records_are_the_highest_scored_rows_in_file_order(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"R{i:04d}" for i in range(600)], "amount": rng.lognormal(5, 0.4, 600).round(2),
                          "account": rng.choice(["A", "B", "C"], 600)})
    frame.loc[[7, 300, 555], "amount"] *= 80
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    loaded, schema = load(data)
    model = AnomalyModel("ecod").fit(loaded.frame, schema)
    out = tmp_path / "scores.parquet"
    score_file(model, data, out, chunk_rows=100)
    scores = pd.read_parquet(out)["score"].to_numpy()
    top = top_records(out, 25, batch_rows=64)  # several batches: the running top-N is kept across them
    expected = np.sort(np.argsort(-scores, kind="stable")[:25])
    assert list(top.columns) == ["id", "amount", "account"]
    assert top["id"].tolist() == frame["id"].iloc[expected].tolist()
    assert {"R0007", "R0300", "R0555"} <= set(top["id"])
    assert len(top_records(out, 10_000)) == 600
