"""Scoring with a fitted model, by where the rows are.

- ``severity``: a raw score as a 0-100 percentile of the training scores.
- ``blocks``: an in-memory table scored in row blocks, so a GUI thread keeps the GIL between blocks.
- ``table``: the scores-file layout (key, score, severity, flagged, top features, original columns),
  written by ``files`` and ``cluster`` and read back by engine.reports.scores_file.
- ``files``: a CSV or Parquet file larger than memory, streamed chunk by chunk into a scores file.
- ``cluster``: the same on a Dask cluster (local worker processes or a scheduler's address).
"""
