"""The project file: everything needed to reopen a review the next day.

A project is a small JSON document (no Qt, no pickle) naming the data file, the analyst's column-role
overrides, the model bundle, the threshold and how it was chosen, and the verdict database. Paths are
stored relative to the project file when they sit beside it (so a project folder can be moved) and
absolute otherwise. Saving is atomic: temporary file in the same folder, fsync, rename. Loading
validates every field's type and refuses anything else with :class:`ModelFileError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import safe_json
from engine.atomic import atomic_write_text
from engine.errors import AnomalyDeskError, ModelFileError
from engine.schema import Role, SchemaOverrides
from engine.thresholds import METHODS

FORMAT = "anomaly-desk-project"
VERSION = 1
MAX_PROJECT_BYTES = 8 * 1024 * 1024  # a project is a few kB; anything huge is not one of ours
THRESHOLD_METHODS = tuple(METHODS)  # one home: engine.thresholds


@dataclass
class ThresholdSetting:
    value: float | None = None  # the score threshold; None = not chosen yet
    method: str = "percentile"  # how it was chosen, one of THRESHOLD_METHODS
    parameter: float | None = None  # e.g. the percentile, the contamination or the target FPR
    window: int | None = None  # sliding-window length for the dynamic threshold
    params: dict[str, Any] = field(default_factory=dict)  # the rule's parameters (engine.thresholds.ThresholdRule)
    dynamic: dict[str, Any] | None = None  # the sliding-window overlay in force: window and percentile

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "method": self.method, "parameter": self.parameter, "window": self.window,
                "params": self.params, "dynamic": self.dynamic}


@dataclass
class Project:
    data_file: str
    overrides: SchemaOverrides = field(default_factory=SchemaOverrides)
    reference_file: str | None = None
    detector: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)
    model_dir: str | None = None
    threshold: ThresholdSetting = field(default_factory=ThresholdSetting)
    verdict_db: str | None = None
    verdict_store_id: str | None = None  # the store's own id (its meta table): only that store is opened
    state_file: str | None = None  # the scores in force (after a retrain too), safetensors beside the project
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # GUI-independent options (financial figures...)

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self, base_dir: str | Path | None = None) -> dict[str, Any]:
        rel = (lambda p: _relative(p, Path(base_dir))) if base_dir is not None else (lambda p: p)
        return {
            "format": FORMAT, "version": VERSION,
            "data_file": rel(self.data_file),
            "reference_file": rel(self.reference_file) if self.reference_file else None,
            "overrides": self.overrides.to_dict(),
            "detector": self.detector, "params": self.params,
            "model_dir": rel(self.model_dir) if self.model_dir else None,
            "threshold": self.threshold.to_dict(),
            "verdict_db": rel(self.verdict_db) if self.verdict_db else None,
            "verdict_store_id": self.verdict_store_id,
            "state_file": rel(self.state_file) if self.state_file else None,
            "user": self.user, "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: Any, base_dir: str | Path | None = None, *, source: str = "project") -> Project:
        v = _Validator(source)
        v.check(isinstance(d, dict), "the file is not a JSON object")
        v.check(d.get("format") == FORMAT, f"not an Anomaly Desk project (format is {d.get('format')!r})")
        v.check(isinstance(d.get("version"), int) and not isinstance(d.get("version"), bool),
                "field 'version' must be an integer")
        v.check(d["version"] <= VERSION, f"written by a newer version (project format {d['version']})")
        base = Path(base_dir) if base_dir is not None else None
        data_file = v.path(d, "data_file", base, required=True)
        reference_file = v.path(d, "reference_file", base)
        model_dir = v.path(d, "model_dir", base)
        verdict_db = v.path(d, "verdict_db", base)
        store_id = v.string(d, "verdict_store_id", default=None)
        state_file = v.path(d, "state_file", base)
        detector = v.string(d, "detector", default="auto")
        params = v.json_dict(d, "params")
        extra = v.json_dict(d, "extra")
        user = v.string(d, "user", default=None)
        overrides = v.overrides(d.get("overrides", {}))
        threshold = v.threshold(d.get("threshold", {}))
        return cls(data_file=data_file, overrides=overrides, reference_file=reference_file, detector=detector,
                   params=params, model_dir=model_dir, threshold=threshold, verdict_db=verdict_db,
                   verdict_store_id=store_id, user=user, extra=extra,
                   state_file=state_file)

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write atomically: a kill during the save leaves the previous version intact."""
        path = Path(path)
        text = json.dumps(self.to_dict(base_dir=path.parent.resolve()), indent=2, allow_nan=False)
        atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Project:
        path = Path(path)
        src = str(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ModelFileError(f"{src}: cannot open the project ({exc.strerror or exc})") from None
        if path.is_dir():
            raise ModelFileError(f"{src}: is a folder, not a project file")
        if size > MAX_PROJECT_BYTES:
            raise ModelFileError(f"{src}: refused: {size} bytes is far too large for a project file")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{src}: cannot read the project ({exc.strerror or exc})") from None
        if raw[:1] == b"\x80" or raw[:2] == b"PK":
            raise ModelFileError(f"{src}: refused: binary content (pickle or archive), a project is JSON text")
        data = safe_json.loads(raw, src, max_bytes=MAX_PROJECT_BYTES, what="project JSON")
        return cls.from_dict(data, base_dir=path.parent.resolve(), source=src)


def open_verdict_store(project: Project, project_file: str | Path | None, *, user: str | None = None,
                       read_only: bool = False, outside_chosen: bool = False):
    """The project's verdict store, and only it.

    An existing file is opened only if it is a verdict store whose id is the one the project recorded
    (``verdict_store_id``; projects written before the id accept any verdict store): another database,
    an empty file or another project's store is refused and left untouched. A missing store is created
    only inside the project's folder, unless the analyst chose the place (``outside_chosen``), and
    never for ``read_only`` (``report``). On creation the new id is set on ``project``: save the
    project to keep it."""
    from engine.feedback import VerdictStore

    where = str(project_file) if project_file is not None else "project"
    if not project.verdict_db:
        raise AnomalyDeskError(f"{where}: the project names no verdict database")
    db = Path(project.verdict_db)
    if db.exists():
        return VerdictStore(db, user, read_only=read_only, create=False, expected_id=project.verdict_store_id)
    if read_only:
        raise AnomalyDeskError(f"{where}: the project's verdict database {db} does not exist")
    if project.verdict_store_id is not None:
        raise AnomalyDeskError(f"{where}: the project's verdict database {db} is missing (moved or deleted); "
                               "a new empty one is not made in its place: put it back or choose another")
    folder = Path(project_file).resolve().parent if project_file is not None else None
    inside = folder is not None and db.resolve().is_relative_to(folder)
    if not inside and not outside_chosen:
        raise AnomalyDeskError(f"{where}: the verdict database {db} would be created outside the project's folder"
                               f"{f' ({folder})' if folder else ''}: choose its place explicitly")
    store = VerdictStore(db, user, create=True)
    project.verdict_store_id = store.store_id
    return store


def _relative(p: str | None, base: Path) -> str | None:
    if p is None:
        return None
    try:
        return Path(p).resolve().relative_to(base).as_posix()
    except ValueError:
        return str(Path(p).resolve())


class _Validator:
    def __init__(self, source: str):
        self.source = source

    def fail(self, message: str):
        raise ModelFileError(f"{self.source}: {message}")

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.fail(message)

    def string(self, d: dict, key: str, default: Any = "", required: bool = False) -> Any:
        if key not in d or d[key] is None:
            if required:
                self.fail(f"field '{key}' is missing")
            return default
        self.check(isinstance(d[key], str), f"field '{key}' must be text, not {type(d[key]).__name__}")
        self.check("\x00" not in d[key] and len(d[key]) < 4096, f"field '{key}' is not a valid value")
        return d[key]

    def path(self, d: dict, key: str, base: Path | None, required: bool = False) -> str | None:
        value = self.string(d, key, default=None, required=required)
        if value is None:
            return None
        p = Path(value)
        if not p.is_absolute() and base is not None:
            p = base / p
        return str(p)

    def number(self, d: dict, key: str, allow_none: bool = True) -> float | None:
        value = d.get(key)
        if value is None and allow_none:
            return None
        self.check(isinstance(value, (int, float)) and not isinstance(value, bool),
                   f"field '{key}' must be a number, not {type(value).__name__}")
        self.check(math.isfinite(value), f"field '{key}' must be a finite number")
        return float(value)

    def json_dict(self, d: dict, key: str) -> dict:
        value = d.get(key, {})
        if value is None:
            return {}
        self.check(isinstance(value, dict), f"field '{key}' must be an object")
        self._plain(value, key, depth=0)
        return value

    def _plain(self, value: Any, where: str, depth: int) -> None:
        self.check(depth < 16, f"field '{where}' is nested too deeply")
        if isinstance(value, dict):
            for k, v in value.items():
                self.check(isinstance(k, str), f"field '{where}' has a non-text key")
                self._plain(v, f"{where}.{k}", depth + 1)
        elif isinstance(value, list):
            for v in value:
                self._plain(v, where, depth + 1)
        else:
            self.check(value is None or isinstance(value, (str, int, float, bool)),
                       f"field '{where}' holds an unsupported value")

    def overrides(self, d: Any) -> SchemaOverrides:
        self.check(isinstance(d, dict), "field 'overrides' must be an object")
        roles = d.get("roles", {}) or {}
        self.check(isinstance(roles, dict), "field 'overrides.roles' must be an object")
        parsed = {}
        valid = {r.value for r in Role}
        for name, role in roles.items():
            self.check(isinstance(name, str) and isinstance(role, str) and role in valid,
                       f"field 'overrides.roles' has an invalid role for column {name!r}: {role!r}")
            parsed[name] = Role(role)
        label = self.string(d, "label_column", default=None)
        normal = self.string(d, "normal_value", default=None)
        return SchemaOverrides(roles=parsed, label_column=label, normal_value=normal)

    def threshold(self, d: Any) -> ThresholdSetting:
        self.check(isinstance(d, dict), "field 'threshold' must be an object")
        method = self.string(d, "method", default="percentile")
        self.check(method in THRESHOLD_METHODS, f"field 'threshold.method' is unknown: {method!r}")
        window = d.get("window")
        self.check(window is None or (isinstance(window, int) and not isinstance(window, bool) and window > 0),
                   "field 'threshold.window' must be a positive integer")
        params = self.json_dict(d, "params")
        dynamic = d.get("dynamic")
        if dynamic is not None:
            dynamic = self.json_dict(d, "dynamic")
        return ThresholdSetting(value=self.number(d, "value"), method=method,
                                parameter=self.number(d, "parameter"), window=window, params=params,
                                dynamic=dynamic)
