"""The analyst's session: one owner for the file, schema, reference file, model, scores in force,
threshold rule and verdicts, so what is saved is what was on screen.

Qt-free, like napari's ``ViewerModel``: the GUI's panels render a :class:`Session` and send the
analyst's actions to it; the CLI and scripts drive the same object headless.

- ``model``: the :class:`Session` itself (loading, training, thresholds, verdicts, retraining).
- ``outcomes``: what its compute halves return (built in workers), its events, where verdicts live.
- ``state``: a session on disk (project JSON, model bundle, the scores in force as safetensors).
"""

from engine.session.model import VERDICT_FROM_RETRAIN, Session
from engine.session.outcomes import (
           EVENTS,
           Loaded,
           NextBatch,
           Retrain,
           Retrained,
           Suggestion,
           Trained,
           default_data_dir,
           verdict_db_path,
)

__all__ = ["EVENTS", "VERDICT_FROM_RETRAIN", "Loaded", "NextBatch", "Retrain", "Retrained", "Session", "Suggestion", "Trained",
           "default_data_dir", "verdict_db_path"]
