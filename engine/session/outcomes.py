"""What the session's compute halves return (immutable, built in workers), its events, and where
verdicts live when no project names a place."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import AnomalyDeskError
from engine.schema import Schema, SchemaOverrides
from engine.thresholds import Threshold, ThresholdRule

ProgressCallback = Callable[..., None]
StopCallback = Callable[[], bool]
EVENTS = ("file", "reference", "scores", "threshold", "verdicts", "dirty", "rules")


def default_data_dir() -> Path:
    """Where verdict databases live when no project names one: ``$XDG_DATA_HOME/anomaly-desk`` (else
    ``~/.local/share/anomaly-desk``), so a test or a second user with its own HOME gets its own."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "anomaly-desk"


def verdict_db_path(data_dir: str | Path, data_file: str | Path) -> Path:
    """The verdict database of a data file: one per file path, under ``data_dir/verdicts``."""
    src = str(Path(data_file).resolve())
    digest = hashlib.sha1(src.encode()).hexdigest()[:10]
    return Path(data_dir) / "verdicts" / f"{Path(src).stem}-{digest}.sqlite"


def no_progress(*_a, **_k) -> None:
    return None


def never() -> bool:
    return False


# ----------------------------------------------------------------------------------------------
# outcomes of the compute halves (immutable; built in workers)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loaded:
    loaded: Any  # engine.io.LoadedFile
    inferred: Schema
    overrides: SchemaOverrides
    schema: Schema
    keys: np.ndarray
    labels: np.ndarray | None
    store: Any  # engine.feedback.VerdictStore or None when it could not be opened
    store_error: BaseException | None = None
    orphans: tuple[str, ...] = ()
    matched: dict | None = None  # row -> VerdictRecord, attached in the worker (seconds at a million rows)


@dataclass(frozen=True)
class Trained:
    frame_id: int  # which loaded frame it was computed for
    model: Any  # engine.pipeline.AnomalyModel
    result: Any  # engine.pipeline.ScoreResult on the whole file
    reference_scores: np.ndarray | None
    detector: str
    params: dict
    # computed in the worker, so the GUI thread only swaps them in (0.1-0.2 s each at a million rows)
    order: np.ndarray | None = None  # ascending argsort of the scores
    default: Threshold | None = None  # the default rule's threshold


@dataclass(frozen=True)
class Retrained:
    frame_id: int
    feedback: Any  # engine.feedback.FeedbackResult
    result: Any | None  # a fresh ScoreResult when the detector was refitted
    severity: np.ndarray | None = None  # of the re-ranked scores (engine.scoring.severity)
    order: np.ndarray | None = None  # ascending argsort of the re-ranked scores


@dataclass(frozen=True)
class NextBatch:
    """What ``Session.next_batch`` picked, and why, for the queue's line."""

    records: np.ndarray  # row indices, best first
    explored: int  # picks spread over other detectors and regions (the queue is still cold)
    static_only: int  # picks the guard took from the detector's own ranking
    favoured: str | None  # the detector the verdicts favour, when both classes are in

    @property
    def text(self) -> str:
        n = len(self.records)
        if not n:
            return "every record has a verdict or is covered by a rule"
        parts = [f"the next {n} to review"]
        rest = n - self.explored - self.static_only
        if self.explored:
            parts.append(f"{rest} from the top of the queue, {self.explored} exploring other detectors and "
                         "regions (few anomalies confirmed yet)")
        elif self.static_only:
            parts.append(f"{rest} from the re-ranked queue, {self.static_only} from the detector's own ranking")
        if self.favoured:
            parts.append(f"the verdicts favour {self.favoured}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Retrain:
    """What the last "Retrain with verdicts" did, for the views (and the saved state)."""

    n_anomalies: int
    n_normals: int
    seconds: float
    flagged_before: int
    flagged_after: int


@dataclass(frozen=True)
class Suggestion:
    """A rule the verdicts suggest after a retrain: offered, never imposed."""

    rule: ThresholdRule
    threshold: Threshold


@dataclass
class Events:
    listeners: dict[str, list[Callable[[], None]]] = field(default_factory=dict)

    def connect(self, name: str, fn: Callable[[], None]) -> None:
        if name not in EVENTS:
            raise ValueError(f"unknown session event {name!r}")
        self.listeners.setdefault(name, []).append(fn)

    def emit(self, name: str) -> None:
        for fn in list(self.listeners.get(name, ())):
            fn()


def labels_of(frame, schema: Schema, label_vector) -> np.ndarray | None:
    if not schema.label_column:
        return None
    try:
        return label_vector(frame, schema)
    except AnomalyDeskError:
        return None
