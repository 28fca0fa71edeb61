"""A session on disk: the project JSON (engine.project), the model bundle and the scores in force
(safetensors, never pickle) beside it, and reading them back for ``Session.open``.

The scores in force are saved rather than recomputed because after "Retrain with verdicts" they come
from the re-ranker, whose state (region forest, column profile) is rebuilt from the whole file; saving
the scores, their severity and the detector's part of them (``base_z``) makes a reopened project show
exactly what was on screen, for a few bytes per row (8 per array).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import AnomalyDeskError, ModelFileError
from engine.session.outcomes import ProgressCallback, StopCallback, never, no_progress
from engine.thresholds import ThresholdRule

if TYPE_CHECKING:
    from engine.session.model import Session

STATE_FORMAT = "anomaly-desk-session-state"
STATE_VERSION = "1"


def save_session(session: Session, project_path: str | Path) -> Path:
    """Write the project (JSON), the model bundle and the scores in force (safetensors) beside it."""
    from engine.project import Project, ThresholdSetting

    s = session
    if s.loaded is None:
        raise AnomalyDeskError("nothing to save: no file loaded")
    path = Path(project_path)
    model_dir = state_file = None
    if s.model is not None and s.scores is not None:
        model_dir = path.with_suffix(".model")
        s.model.save(model_dir)
        state_file = path.with_suffix(".state.safetensors")
        save_state(s, state_file)
    rule = s.threshold_rule
    share = rule.params.get("share", rule.params.get("fpr"))
    threshold = ThresholdSetting(value=s.threshold, method=rule.method, params=dict(rule.params),
                                 parameter=None if share is None else 100.0 * float(share),
                                 window=s.dynamic["window"] if s.dynamic else None,
                                 dynamic=dict(s.dynamic) if s.dynamic else None)
    project = Project(data_file=s.loaded.path, overrides=s.overrides, reference_file=s.reference,
                      detector=s.detector, params=s.params, model_dir=str(model_dir) if model_dir else None,
                      threshold=threshold, verdict_db=str(s.store.path) if s.store is not None else None,
                      verdict_store_id=getattr(s.store, "store_id", None),
                      state_file=str(state_file) if state_file else None, user=s.user,
                      extra={"loss_per_miss": s.costs[0], "cost_per_review": s.costs[1],
                             "threshold_explanation": s.threshold_info.explanation if s.threshold_info else "",
                             # the file was opened without its bad rows: reopened the same way
                             "skip_bad_rows": bool(getattr(s.loaded, "skipped_rows", None))})
    if s.rules:
        from engine.rules import set_project_rules

        set_project_rules(project, s.rules)
    project.save(path)
    s.model_dir = str(model_dir) if model_dir else None
    return path


def save_state(s: Session, path: Path) -> None:
    from safetensors.numpy import save

    from engine.atomic import atomic_output

    arrays = {"scores": np.ascontiguousarray(s.scores, dtype=np.float64),
              "severity": np.ascontiguousarray(s.severity, dtype=np.float64)}
    if s.base_z is not None:
        arrays["base_z"] = np.ascontiguousarray(s.base_z, dtype=np.float64)
    if s.reference_scores is not None:
        arrays["reference_scores"] = np.ascontiguousarray(s.reference_scores, dtype=np.float64)
    retrain = None if s.last_retrain is None else s.last_retrain.__dict__
    meta = {"format": STATE_FORMAT, "version": STATE_VERSION, "rows": str(len(s.scores)),
            "retrain": json.dumps(retrain)}
    with atomic_output(path) as tmp:
        tmp.write_bytes(save(arrays, metadata=meta))


def read_project(session: Session, project_path: str | Path, *, progress: ProgressCallback = no_progress,
                 should_stop: StopCallback = never, read_only: bool = False) -> dict[str, Any]:
    """Compute half of ``Session.open``: the project, its file read, its model scored, its saved scores."""
    from engine.project import Project, open_verdict_store
    from engine.scoring.blocks import score_in_blocks

    project = Project.load(project_path)
    progress(0.05, "reading the data file")
    opener = ((lambda: open_verdict_store(project, project_path, user=session.user, read_only=read_only))
              if project.verdict_db else None)
    loaded = session.read(project.data_file, project.overrides, open_store=opener,
                          skip_bad_rows=bool(project.extra.get("skip_bad_rows", False)))
    out = {"project": project, "path": Path(project_path), "loaded": loaded, "reference": None,
           "model": None, "result": None, "state": None}
    if project.reference_file:
        from engine.io import read_csv

        out["reference"] = read_csv(project.reference_file)
    if project.model_dir:
        from engine.pipeline import AnomalyModel

        progress(0.3, "opening the model bundle")
        out["model"] = AnomalyModel.load(project.model_dir)
        progress(0.4, "scoring the records")
        out["result"] = score_in_blocks(out["model"], loaded.loaded.frame, should_stop=should_stop,
                                        progress=lambda f, m="", **k: progress(0.4 + 0.55 * f, m))
        if project.state_file:
            out["state"] = load_state(project.state_file, len(loaded.loaded.frame))
    return out


def load_state(path: str | Path, rows: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The saved scores in force; refused (ModelFileError) when damaged or not for this file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: the project's saved scores are missing")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: np.asarray(f.get_tensor(k), dtype=np.float64) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # noqa: BLE001 - any damage is reported as one error
        raise ModelFileError(f"{path}: not a valid saved-scores file ({exc})") from None
    if meta.get("format") != STATE_FORMAT:
        raise ModelFileError(f"{path}: not an Anomaly Desk saved-scores file")
    for name in ("scores", "severity"):
        if name not in arrays or arrays[name].shape != (rows,):
            raise ModelFileError(f"{path}: the saved {name} do not match the data file's {rows:,} rows")
    return arrays, meta


def saved_rule(th, extra: dict) -> tuple[ThresholdRule, dict | None]:
    """The rule in force and the sliding-window overlay of a project's threshold (``ThresholdSetting``),
    also for projects written before rules were saved with their parameters."""
    rule = ThresholdRule(th.method if th.method != "dynamic" else "default", dict(th.params or {}))
    if not th.params and th.parameter is not None and th.method in ("percentile", "contamination", "target_fpr"):
        rule = ThresholdRule(th.method, {("fpr" if th.method == "target_fpr" else "share"): th.parameter / 100.0})
    if rule.method == "manual" and "value" not in rule.params and th.value is not None:
        rule = ThresholdRule("manual", {"value": th.value})
    dynamic = th.dynamic or ({"window": th.window, "percentile": float(extra.get("dynamic_percentile", 99.0))}
                             if th.window else None)
    return rule, dynamic
