"""AnomalyModel: fitted preprocessing + a detector, the unit the GUI, CLI and feedback loop use.

``fit`` learns the preprocessing and the detector; ``score`` returns scores, severity 0-100 (the
percentile of each score among the training scores), per-column contributions and, where the
detector has them, expected values in the analyst's units. ``save``/``load`` use engine.bundle
(safetensors + JSON, never pickle). Importing this module does not import torch: deep detectors
are imported only when asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnomalyDeskError, ModelFileError, NotFittedError, SchemaMismatchError
from engine.features import Preprocessor
from engine.safe_json import jsonable
from engine.schema import Role, Schema
from engine.scoring.severity import severity as severity_of

ProgressCallback = Callable[..., None]  # progress(fraction, message, **metrics)
SELF_TRAINED_TRIM = 0.2  # autoencoder trim when fitted on the (all-numeric) file it scores; see AnomalyModel.fit
StopCallback = Callable[[], bool]


@dataclass(frozen=True)
class ScoreResult:
    scores: np.ndarray  # (n,) float64, higher = more anomalous
    severity: np.ndarray  # (n,) float64 in 0..100: percentile of the score among training scores
    contributions: np.ndarray  # (n, n_columns) share of the score per original feature column, rows sum to 1
    columns: list[str]  # original feature columns, the order of ``contributions``
    expected: pd.DataFrame | None = None  # model's expected value per feature column, where it has one
    member_scores: dict[str, np.ndarray] | None = None  # ensemble members' scores, for re-rankers


def _trimmed_unless_chosen(params: dict[str, Any]) -> dict[str, Any]:
    """Autoencoder parameters with ``trim=SELF_TRAINED_TRIM`` unless the caller set a trim."""
    return params if params.get("trim") is not None else {**params, "trim": SELF_TRAINED_TRIM}


class AnomalyModel:
    """Preprocessing + detector. Fit metrics kept for the model card: ``fit_seconds_``, ``rows_``,
    ``device_``, ``history_`` (loss curves where the detector has them), ``versions_`` (after load)."""

    def __init__(self, detector: str = "auto", params: dict | None = None, device: str = "auto", seed: int = 0):
        self.detector = detector
        self.params = dict(params or {})
        self.device = device
        self.seed = seed

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, schema: Schema, progress: ProgressCallback | None = None,
            should_stop: StopCallback | None = None, sample_weight: np.ndarray | None = None,
            known_good: bool = False) -> AnomalyModel:
        """Fit preprocessing and detector. ``sample_weight`` (n,) >= 0: 0 drops a row from what the
        model learns as normal (a confirmed anomaly), > 1 stresses it (a confirmed normal).
        ``known_good``: the rows are a reference file of known-good records, not the (possibly
        contaminated) file being scored; ``auto`` then takes its reference-file rule (``reference=True``,
        see engine.detectors.ensemble.RULES). Without ``known_good``, the autoencoder (alone or as
        ``auto``'s member) on an all-numeric table trains with ``trim=0.2`` unless the caller chose a trim:
        on the file it scores, the rows it rebuilds worst are the likely anomalies, which it should not
        learn as normal. The figures behind both: docs/decisions.md ("Model")."""

        from engine.detectors import make_detector
        from engine.io import validate_for_training

        validate_for_training(frame, schema)
        weight = None
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if weight.shape[0] != len(frame):
                raise AnomalyDeskError(f"sample_weight has {weight.shape[0]} values for {len(frame)} rows")
        start = time.perf_counter()
        if progress:
            progress(0.0, "preprocessing")
        preprocessor = Preprocessor().fit(frame, schema)
        fm = preprocessor.transform(frame)
        params = dict(self.params)
        if known_good and self.detector == "auto":
            params.setdefault("reference", True)
        if not known_good and not fm.cardinalities:  # the autoencoder alone or as auto's member
            if self.detector == "autoencoder":
                params = _trimmed_unless_chosen(params)
            elif self.detector == "auto":
                members = dict(params.get("member_params") or {})
                members["autoencoder"] = _trimmed_unless_chosen(dict(members.get("autoencoder") or {}))
                params["member_params"] = members
        detector = make_detector(self.detector, seed=self.seed, device=self.device, **params)

        def fit_progress(fraction, message="", **metrics):
            if progress:
                progress(0.02 + 0.93 * float(fraction), message, **metrics)

        detector.fit(fm, sample_weight=weight, progress=fit_progress, should_stop=should_stop)
        if progress:
            progress(0.96, "scoring the training rows")
        cached = getattr(detector, "train_scores_", None)  # detectors that scored the rows while fitting
        train_scores = np.asarray(cached if cached is not None and len(cached) == len(frame)
                                  else detector.decision_function(fm), dtype=np.float64)
        ref = train_scores if weight is None else train_scores[weight > 0]
        self.params = params  # what was used (the model card and bundle show the combination)
        self.schema_ = schema
        self.preprocessor_ = preprocessor
        self.detector_ = detector
        self.train_scores_ = np.sort(ref[np.isfinite(ref)])
        self.fit_seconds_ = time.perf_counter() - start
        self.rows_ = int(len(frame))
        self.device_ = str(getattr(detector, "device_", "cpu"))
        self.history_ = _history_of(detector)
        self.versions_: dict[str, Any] = {}
        if progress:
            progress(1.0, f"fitted {self.detector} on {len(frame)} rows in {self.fit_seconds_:.1f} s")
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "detector_"):
            raise NotFittedError("AnomalyModel is not fitted: call fit() first")

    @property
    def feature_columns(self) -> list[str]:
        self._check_fitted()
        return list(self.preprocessor_.feature_columns) if hasattr(self.preprocessor_, "feature_columns") \
            else list(self.schema_.feature_columns)

    def check_frame(self, frame: pd.DataFrame) -> None:
        """Refuse data whose columns do not fit the model's schema, naming the columns."""
        self._check_fitted()
        columns = self.schema_.feature_columns
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                f"the data does not fit this model: missing column(s) {', '.join(missing)} "
                f"(the model was trained on {', '.join(columns)})")
        wrong = []
        for c in columns:
            if self.schema_.column(c).role is not Role.NUMERIC:
                continue
            s = frame[c]
            if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                continue
            present = s.dropna()
            if len(present) and pd.to_numeric(present, errors="coerce").isna().mean() > 0.5:
                wrong.append(c)
        if wrong:
            raise SchemaMismatchError(
                f"the data does not fit this model: column(s) {', '.join(wrong)} hold text where the model "
                "expects numbers")

    # -- scoring -----------------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame):
        """The encoded feature matrix the detector sees (for re-rankers and what-if views)."""
        self._check_fitted()
        self.check_frame(frame)
        return self.preprocessor_.transform(frame)

    def score(self, frame: pd.DataFrame, expected: bool = True) -> ScoreResult:
        """Scores, severities, contributions and (``expected``) expected values of ``frame``'s rows, from
        one pass of the detector over them (``Detector.score_and_explain``). A scores file needs no
        expected values: leaving them out spares the model's full level probabilities."""
        self._check_fitted()
        fm = self.transform(frame)
        out = self.detector_.score_and_explain(fm, expected=expected)
        scores = np.asarray(out.scores, dtype=np.float64)
        members = out.members if out.members is not None else {self.detector: scores}
        _check_finite_scores(scores)
        return ScoreResult(scores=scores, severity=severity_of(scores, self.train_scores_),
                           contributions=np.asarray(out.contributions, dtype=np.float64),
                           columns=list(fm.source_columns),
                           expected=self._expected(fm, out.expected) if expected else None, member_scores=members)

    def _expected(self, fm, encoded: np.ndarray | None) -> pd.DataFrame | None:
        if encoded is None:
            return None
        invert = getattr(self.preprocessor_, "inverse_transform_expected", None)
        if invert is None:
            return None
        try:
            return invert(np.asarray(encoded), fm)
        except (ValueError, IndexError, KeyError):
            return None  # an expectation the preprocessing cannot map back: leave it out

    def model_card(self) -> dict[str, Any]:
        """What the model is and how it was trained, for reports and the GUI."""
        self._check_fitted()
        return {"detector": self.detector, "params": self.params, "seed": self.seed,
                "fit_seconds": self.fit_seconds_, "rows": self.rows_, "device": self.device_,
                "history": self.history_, "feature_columns": self.feature_columns,
                "versions": dict(getattr(self, "versions_", {}) or {})}

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the model as a bundle directory (engine.bundle: safetensors + JSON, atomic)."""
        from engine.bundle import save_bundle

        self._check_fitted()
        meta, arrays = self.detector_.get_state()
        out = {f"detector.{k}": v for k, v in arrays.items()}
        out["train_scores"] = self.train_scores_
        doc = {"detector": self.detector, "params": self.params, "seed": int(self.seed), "device": self.device,
               "detector_state": meta, "schema": self.schema_.to_dict(),
               "preprocessing": self.preprocessor_.to_dict(),
               "training": {"fit_seconds": float(self.fit_seconds_), "rows": int(self.rows_),
                            "device": self.device_, "history": self.history_}}
        return save_bundle(directory, jsonable(doc), out)

    @classmethod
    def load(cls, directory: str | Path) -> AnomalyModel:
        """Open a bundle; refuses unsafe or damaged ones with ModelFileError (never unpickles)."""
        from engine.bundle import load_bundle, require_field
        from engine.detectors import DETECTOR_NAMES, detector_class
        from engine.detectors.params import validate
        from engine.detectors.state_checks import check_state

        doc, arrays = load_bundle(directory)
        name = require_field(doc, "detector", str)
        if name not in DETECTOR_NAMES:
            raise ModelFileError(f"{directory}: unknown detector {name!r} in model.json")
        params = require_field(doc, "params", dict)
        seed = require_field(doc, "seed", int)
        device = require_field(doc, "device", str)
        state = require_field(doc, "detector_state", dict)
        schema_doc = require_field(doc, "schema", dict)
        prep_doc = require_field(doc, "preprocessing", dict)
        training = require_field(doc, "training", dict)
        if "train_scores" not in arrays or arrays["train_scores"].ndim != 1:
            raise ModelFileError(f"{directory}: the training scores are missing")
        train_scores = arrays["train_scores"]
        if train_scores.dtype.kind != "f" or not np.isfinite(train_scores).all():
            raise ModelFileError(f"{directory}: array 'train_scores' holds {train_scores.dtype} values that are "
                                 "not all finite numbers: the weights were altered or damaged; refused")
        model = cls(detector=name, params=params, device=device, seed=seed)
        try:
            validate(name, params)  # the declared parameters (engine.detectors.params), named when wrong
            if isinstance(state.get("params"), dict):
                validate(name, state["params"])
            model.schema_ = Schema.from_dict(schema_doc)
            model.preprocessor_ = Preprocessor.from_dict(prep_doc)
            det_arrays = {k[len("detector."):]: v for k, v in arrays.items() if k.startswith("detector.")}
            check_state(name, state, det_arrays)
            model.detector_ = detector_class(name).from_state(state, det_arrays)
        except ModelFileError as exc:
            raise ModelFileError(f"{directory}: {exc}") from None
        except (AnomalyDeskError, KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            raise ModelFileError(f"{directory}: model.json or the weights are inconsistent "
                                 f"({type(exc).__name__}: {exc})") from None
        model.train_scores_ = np.sort(np.asarray(arrays["train_scores"], dtype=np.float64))
        model.fit_seconds_ = float(training.get("fit_seconds", 0.0) or 0.0)
        model.rows_ = int(training.get("rows", 0) or 0)
        model.device_ = str(training.get("device", "cpu"))
        model.history_ = training.get("history")
        model.versions_ = dict(doc.get("versions") or {})
        return model


def _check_finite_scores(scores: np.ndarray) -> None:
    """A NaN score is neither above nor below a threshold, so it would count as "not flagged": a model
    giving one is refused rather than reporting "0 flagged" on garbage."""
    bad = ~np.isfinite(scores)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise AnomalyDeskError(f"the model gave {int(bad.sum()):,} of {len(scores):,} records a score that is not "
                               f"a finite number (the first at position {first + 1} of this batch): its weights "
                               "are damaged or these values are far outside what it learnt; nothing is flagged "
                               "from such scores")


def _history_of(detector) -> Any:
    h = getattr(detector, "history_", None)
    if h is None:
        return None
    return jsonable(h.to_dict() if hasattr(h, "to_dict") else h)
