"""The analyst's session: one owner for the file, schema, reference file, model, scores in force,
threshold rule and verdicts, so what is saved is what was on screen.

Qt-free, like napari's ``ViewerModel``: the GUI's panels render a :class:`Session` and send the
analyst's actions to it, the CLI and benchmarks drive the same object headless. Each long operation
comes in two halves: a *compute* half (``read``, ``fit``, ``rerank``, ``read_project``) that only reads
the session and returns an immutable outcome, safe to run in a worker thread, and an *adopt* half that
swaps the outcome in (in the GUI thread). ``load``, ``train``, ``retrain`` and ``open`` do both.

One score in force, one severity, one threshold: after "Retrain with verdicts" the re-ranked scores
are the scores in force for every view and export; severity is always the percentile of a score among
the scores of the rows its ranking was learnt on (the detector's training rows; after a retrain, the
file's rows, since the re-ranker only ranks those: ``engine.scoring.severity`` either way); the threshold
is the analyst's rule (``engine.thresholds.ThresholdRule``) applied to the scores in force.

Rules from verdicts (``engine.rules``, saved in the project): ``flagged == (scores >= threshold) & ~ruled``,
where ``ruled`` marks the records a rule treats as normal; with no rules it is ``scores >= threshold``.

What to review next (``next_batch``) is the review loop's pick from the last retrain's state, the same
pick ``simulate-review`` measures. That state (its region table alone up to 40 MB) is not saved with a
project, so a reopened project's next batch is the top of the re-ranked queue until its next retrain.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.errors import AnomalyDeskError, Cancelled, SchemaMismatchError
from engine.schema import Schema, SchemaOverrides
from engine.scoring.severity import severity as severity_of
from engine.session import state
from engine.session.outcomes import (
    Events,
    Loaded,
    NextBatch,
    ProgressCallback,
    Retrain,
    Retrained,
    StopCallback,
    Suggestion,
    Trained,
    default_data_dir,
    labels_of,
    never,
    no_progress,
    verdict_db_path,
)
from engine.session.review import ReviewActions
from engine.thresholds import Threshold, ThresholdRule, apply_rule, dynamic_threshold

VERDICT_FROM_RETRAIN = "learnt from verdicts"  # the contribution column for the re-ranker's part of a score


class Session(ReviewActions):
    """The analyst's review of one file. See the module docstring."""

    def __init__(self, data_dir: str | Path | None = None, user: str | None = None):
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.user = user
        self.events = Events()
        self.costs: tuple[float, float] = (5000.0, 25.0)  # missed anomaly, one review (the money figures)
        self.detector = "auto"
        self.params: dict = {}
        self.project_path: Path | None = None
        self.model_dir: str | None = None
        self.dirty = False
        self.store = None
        self.loaded = None
        self._reset_file_state()

    # ------------------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------------------
    def _reset_file_state(self) -> None:
        """Everything that belongs to one file (called on every load)."""
        if self.store is not None:
            self.store.close()
        self.store = None
        self.loaded = None
        self.inferred: Schema | None = None
        self.overrides = SchemaOverrides()
        self.schema: Schema | None = None
        self.keys: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.orphans: tuple[str, ...] = ()
        self._pending_reasons: dict[str, str] = {}  # reasons chosen for records not reviewed yet
        self._matched: dict | None = None  # verdict_records_by_row() until a verdict changes
        self.reference_file = None  # engine.io.LoadedFile of known-good rows
        self.rules: list = []  # engine.rules.Rule: "treat records like this as normal"
        self.ruled: np.ndarray | None = None  # rows a rule covers (None when no file)
        self.last_undone: list = []  # every AuditEntry the last undo took back (several for a batch)
        self._reset_scores()

    def _reset_scores(self) -> None:
        self.model = None
        self.result = None  # the detector's ScoreResult on the file (contributions, expected values)
        self.reference_scores: np.ndarray | None = None
        self.scores: np.ndarray | None = None
        self.severity: np.ndarray | None = None
        self.score_order: np.ndarray | None = None  # ascending argsort of the scores, when a worker made it
        self.base_z: np.ndarray | None = None  # after a retrain: the detector's part of each score
        self.feedback_state = None
        self.last_retrain: Retrain | None = None
        self.favoured: str | None = None  # the detector the verdicts favour, when the re-ranker says
        self.suggestion: Suggestion | None = None
        self.threshold_rule = ThresholdRule("default")
        self.threshold_info: Threshold | None = None
        self.dynamic: dict | None = None  # {"window": int, "percentile": float} when the overlay is on
        self._dynamic_cut: np.ndarray | None = None
        self.model_dir = None

    @property
    def reference(self) -> str | None:
        """The reference file in force (its path), or None."""
        return self.reference_file.path if self.reference_file is not None else None

    @property
    def frame(self):
        return self.loaded.frame if self.loaded is not None else None

    @property
    def skipped_rows(self) -> list[str]:
        """The bad rows left out when the file was read (``load(..., skip_bad_rows=True)``), one line each:
        the data screen lists them and the reports count them."""
        if self.loaded is None or not getattr(self.loaded, "skipped_rows", None):
            return []
        expected = self.loaded.frame.shape[1]
        return [f"row {row}: {found} field{'s' if found != 1 else ''}, expected {expected}"
                for row, found in self.loaded.skipped_rows]

    @property
    def retrained(self) -> bool:
        return self.base_z is not None

    @property
    def threshold(self) -> float | None:
        return None if self.threshold_info is None else float(self.threshold_info.value)

    @property
    def cut(self) -> float | np.ndarray | None:
        """What ``flagged`` compares with: one threshold per record with the sliding window, else the value."""
        return self._dynamic_cut if self._dynamic_cut is not None else self.threshold

    @property
    def flagged(self) -> np.ndarray | None:
        """``(scores >= cut) & ~ruled``: a record a rule treats as normal leaves the flagged queue (with no
        rules, exactly ``scores >= threshold``)."""
        if self.scores is None or self.threshold_info is None:
            return None
        above = self.scores >= self.cut
        return above & ~self.ruled if self.ruled is not None and self.ruled.any() else above

    @property
    def contributions(self) -> np.ndarray | None:
        """Each column's share of the score in force (rows sum to 1). Before a retrain: the detector's
        shares. After: the score is the detector's part (its robust z) plus what the re-ranker learnt
        from the verdicts; the columns share the detector's part as the detector said, and one more
        column, ``VERDICT_FROM_RETRAIN``, carries the re-ranker's part, each in proportion to its size."""
        if self.result is None:
            return None
        base = np.asarray(self.result.contributions, dtype=np.float64)
        if self.base_z is None:
            return base
        detector = np.abs(self.base_z)
        learnt = np.abs(self.scores - self.base_z)
        total = detector + learnt
        total[total == 0] = 1.0
        return np.column_stack([base * (detector / total)[:, None], learnt / total])

    @property
    def contribution_columns(self) -> list[str]:
        if self.result is None:
            return []
        return list(self.result.columns) + ([VERDICT_FROM_RETRAIN] if self.base_z is not None else [])

    def score_result(self):
        """The detector's ScoreResult with the scores, severity and shares in force (what exports use)."""
        if self.result is None:
            return None
        return replace(self.result, scores=self.scores, severity=self.severity,
                       contributions=self.contributions, columns=self.contribution_columns)

    def mark_clean(self) -> None:
        """What is shown now is what the project holds (after opening or saving it)."""
        self._mark(False)

    def _mark(self, dirty: bool = True) -> None:
        if self.dirty != dirty:
            self.dirty = dirty
            self.events.emit("dirty")

    # ------------------------------------------------------------------------------------------
    # loading a file
    # ------------------------------------------------------------------------------------------
    def read(self, path: str | Path, overrides: SchemaOverrides | None = None, *, open_store=None,
             progress: ProgressCallback = no_progress, should_stop: StopCallback = never,
             skip_bad_rows: bool = False) -> Loaded:
        """Compute half of ``load``: read the file, infer the schema, key the records, open its verdicts.
        ``skip_bad_rows``: rows with the wrong number of fields are left out (``skipped_rows``)."""
        from engine.io import load

        progress(0.1, "reading")
        loaded, inferred = load(str(path), skip_bad_rows=skip_bad_rows)
        overrides = overrides or SchemaOverrides()
        schema = overrides.apply(inferred) if (overrides.roles or overrides.label_column is not None) else inferred
        progress(0.6, "computing record keys")
        return self._keyed(loaded, inferred, overrides, schema, open_store, progress)

    def _keyed(self, loaded, inferred: Schema, overrides: SchemaOverrides, schema: Schema,
               open_store=None, progress: ProgressCallback = no_progress) -> Loaded:
        from engine.feedback import VerdictStore, record_keys
        from engine.io import label_vector

        keys = record_keys(loaded.frame, schema)
        labels = labels_of(loaded.frame, schema, label_vector)
        progress(0.85, "attaching the verdicts given earlier")
        store = error = None
        orphans: list[str] = []
        try:
            # a project's own store (engine.project.open_verdict_store: only the store it recorded), else
            # the file's store in the data folder
            store = (open_store() if open_store is not None
                     else VerdictStore(verdict_db_path(self.data_dir, loaded.path), user=self.user))
            matched, orphans = store.attach(keys)
        except AnomalyDeskError as exc:
            error, matched = exc, None
        return Loaded(loaded, inferred, overrides, schema, keys, labels, store, error, tuple(orphans), matched)

    def read_with_model(self, path: str | Path, *, progress: ProgressCallback = no_progress):
        """Compute half of ``apply_model``: a new file scored by the model in force with its column roles
        (engine.model_reuse: the schema differences are refused or reported)."""
        from engine.io import LoadedFile
        from engine.model_reuse import apply_model

        if self.model is None:
            raise AnomalyDeskError("train a model first: there is no model to apply")
        th = self.threshold if self.threshold is not None and np.isfinite(self.threshold) else None
        applied = apply_model(self.model, str(path), threshold=th, progress=progress)
        loaded = LoadedFile(path=applied.file, frame=applied.frame)
        return self._keyed(loaded, applied.schema, SchemaOverrides(), applied.schema), applied, self.model

    def apply_model(self, path: str | Path) -> None:
        """Score a new file with the model in force, carrying over its roles and threshold value."""
        self.adopt_applied(self.read_with_model(path))

    def adopt_applied(self, outcome) -> None:
        loaded, applied, model = outcome
        self.adopt(loaded)
        self.model, self.result = model, applied.result
        self.scores = np.asarray(applied.result.scores, dtype=float)
        self.severity = np.asarray(applied.result.severity, dtype=float)
        self.events.emit("scores")
        if applied.threshold is not None:
            self._apply_threshold(ThresholdRule("manual", {"value": float(applied.threshold)}))
            self.threshold_info = replace(self.threshold_info, explanation=f"Carried over with the model "
                                          f"({applied.threshold_method}).")
            self.events.emit("threshold")
        else:
            self._apply_threshold(ThresholdRule("default"))
        self._mark()

    def adopt(self, outcome: Loaded) -> None:
        """Make the read file the session's: every per-file state of the previous one is reset."""
        self._reset_file_state()
        self.project_path = None
        self.loaded = outcome.loaded
        self.inferred = outcome.inferred
        self.overrides = outcome.overrides
        self.schema = outcome.schema
        self.keys = outcome.keys
        self.labels = outcome.labels
        self.store = outcome.store
        self.orphans = outcome.orphans
        self._matched = outcome.matched
        self._mark(False)
        self.set_rules([])
        self.events.emit("file")
        if outcome.store_error is not None:
            raise outcome.store_error

    def load(self, csv_path: str | Path, reference: str | Path | None = None,
             overrides: SchemaOverrides | None = None, skip_bad_rows: bool = False) -> None:
        """Load a file (schema inferred, ``overrides`` applied); resets every per-file state."""
        self.adopt(self.read(csv_path, overrides, skip_bad_rows=skip_bad_rows))
        if reference is not None:
            self.set_reference(self.read_reference(reference))

    def set_overrides(self, overrides: SchemaOverrides) -> None:
        """The analyst changed column roles: new schema (and keys when the identifier changed)."""
        if self.inferred is None:
            return
        try:
            schema = overrides.apply(self.inferred)
        except KeyError as exc:
            raise AnomalyDeskError(f"column roles: {exc}") from None
        old_ident = self.schema.identifier_column if self.schema else None
        self.overrides, self.schema = overrides, schema
        if schema.identifier_column != old_ident:
            from engine.feedback import record_keys

            self.keys = record_keys(self.loaded.frame, schema)
            self._matched = None
        from engine.io import label_vector

        self.labels = labels_of(self.loaded.frame, schema, label_vector)
        self._mark()
        self.events.emit("verdicts")

    # ------------------------------------------------------------------------------------------
    # reference file
    # ------------------------------------------------------------------------------------------
    def read_reference(self, path: str | Path):
        """Compute half of ``set_reference``: read the file and check it has the columns the model learns from."""
        from engine.io import read_csv

        ref = read_csv(str(path))
        if self.schema is not None:
            missing = [c for c in self.schema.feature_columns if c not in ref.frame.columns]
            if missing:
                shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
                raise SchemaMismatchError(
                    f"reference file {Path(ref.path).name} does not match {Path(self.loaded.path).name}: "
                    f"it lacks the column(s) {shown}")
        return ref

    def set_reference(self, reference) -> None:
        """``reference``: a LoadedFile from ``read_reference``, a path, or None to train on the file itself."""
        if reference is not None and not hasattr(reference, "frame"):
            reference = self.read_reference(reference)
        self.reference_file = reference
        self._mark()
        self.events.emit("reference")

    # ------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------
    def fit(self, detector: str = "auto", *, seed: int = 0, device: str = "auto", sample_rows: int | None = None,
            use_reference: bool | None = None, progress: ProgressCallback = no_progress,
            should_stop: StopCallback = never, **params) -> Trained:
        """Compute half of ``train``: fit a detector (on the reference file when one is set) and score the file."""
        from engine.pipeline import AnomalyModel
        from engine.scoring.blocks import score_in_blocks

        if self.loaded is None or self.schema is None:
            raise AnomalyDeskError("no file loaded: open a CSV first")
        frame, schema = self.loaded.frame, self.schema
        use_reference = self.reference_file is not None if use_reference is None else use_reference
        if use_reference and self.reference_file is None:
            raise AnomalyDeskError("no reference file is set")
        train_frame = self.reference_file.frame if use_reference else frame
        if use_reference:
            missing = [c for c in schema.feature_columns if c not in train_frame.columns]
            if missing:
                raise SchemaMismatchError(f"reference file {Path(self.reference_file.path).name} lacks the "
                                          f"column(s) {', '.join(missing[:8])}")
        data = train_frame
        if sample_rows and len(data) > sample_rows:
            # not DataFrame.sample: its legacy RandomState permutes all rows holding the GIL
            rows = np.random.default_rng(seed).choice(len(data), size=sample_rows, replace=False)
            data = data.iloc[np.sort(rows)]
        model = AnomalyModel(detector=detector, params=params, device=device, seed=seed)
        model.fit(data, schema, progress=lambda f, m="", **k: progress(0.85 * f, m, **k),
                  should_stop=should_stop, known_good=use_reference)
        if should_stop():
            raise Cancelled("training was cancelled")
        progress(0.88, f"scoring {len(frame):,} records", device=getattr(model, "device_", None))
        result = score_in_blocks(model, frame, should_stop=should_stop,
                                 progress=lambda f, m="", **k: progress(0.88 + 0.1 * f, m))
        ref_scores = (np.asarray(score_in_blocks(model, train_frame, should_stop=should_stop).scores, dtype=float)
                      if use_reference else None)
        progress(0.99, "ordering the queue")
        scores = np.asarray(result.scores, dtype=float)
        default = apply_rule(ThresholdRule("default"), scores, reference_scores=ref_scores)
        progress(1.0, "done")
        return Trained(id(frame), model, result, ref_scores, detector, dict(params),
                       np.argsort(scores, kind="stable"), default)

    def adopt_training(self, outcome: Trained) -> None:
        self._check_frame(outcome.frame_id)
        self._reset_scores()
        self.detector, self.params = outcome.detector, dict(outcome.params)
        self.model = outcome.model
        self.result = outcome.result
        self.reference_scores = outcome.reference_scores
        self.scores = np.asarray(outcome.result.scores, dtype=float)
        self.severity = np.asarray(outcome.result.severity, dtype=float)
        self.score_order = outcome.order
        self.events.emit("scores")
        self._apply_threshold(ThresholdRule("default"), outcome.default)
        self._mark()

    def train(self, detector: str = "auto", seed: int = 0, *, progress: ProgressCallback = no_progress,
              should_stop: StopCallback = never, **params) -> None:
        """Fit ``detector`` (``params`` are its settings) and score every record; the default threshold rule."""
        self.adopt_training(self.fit(detector, seed=seed, progress=progress, should_stop=should_stop, **params))

    def _check_frame(self, frame_id: int) -> None:
        if self.loaded is None or id(self.loaded.frame) != frame_id:
            raise Cancelled("the file changed while the job ran")

    # ------------------------------------------------------------------------------------------
    # the threshold
    # ------------------------------------------------------------------------------------------
    def _rule_inputs(self, method: str) -> dict:
        """What a rule is computed from; the verdicts are looked up only for the rules that use them
        (attaching them to a million rows takes a moment)."""
        labels, index = self.labels, None
        if labels is None and method in ("best_f1", "cost", "target_fpr"):
            rows = self.verdicts_by_row()
            index = np.array(sorted(i for i, v in rows.items() if v in ("anomaly", "normal")), dtype=np.int64)
            labels = np.array([rows[int(i)] == "anomaly" for i in index], dtype=bool) if len(index) else None
        ref = None if self.retrained else self.reference_scores
        return {"labels": labels, "label_index": index, "reference_scores": ref, "costs": self.costs}

    def threshold_for(self, rule: ThresholdRule, rescaled: bool = False) -> Threshold:
        """What ``rule`` gives on the scores in force. After a retrain the scores have another scale:
        a rule that needs the reference file's scores (the default with a reference file, a target
        false-positive rate on it) and, when ``rescaled`` (the scores just changed scale), a value set by
        hand keep the number of records they flagged, now the top ones of the new ranking."""
        if self.scores is None:
            raise AnomalyDeskError("train a model first: there are no scores to set a threshold on")
        inputs = self._rule_inputs(rule.method)
        if rule.method == "manual" and rescaled and "flagged" in rule.params:
            return _top_k(self.scores, int(rule.params["flagged"]), rule)
        if self.retrained and self.reference_scores is not None and rule.method in ("default", "target_fpr"):
            base = apply_rule(rule, self.result.scores, **{**inputs, "reference_scores": self.reference_scores})
            return _top_k(self.scores, int((np.asarray(self.result.scores) >= base.value).sum()), rule)
        return apply_rule(rule, self.scores, **inputs)

    def _apply_threshold(self, rule: ThresholdRule, th: Threshold | None = None, rescaled: bool = False) -> None:
        th = th if th is not None else self.threshold_for(rule, rescaled)
        if rule.method == "manual":
            rule = ThresholdRule("manual", {"value": float(th.value), "flagged": int((self.scores >= th.value).sum())})
        self.threshold_rule = rule
        self.threshold_info = th
        self._recompute_dynamic()
        self.events.emit("threshold")

    def set_threshold(self, method: str, **params) -> Threshold:
        """Put a rule in force (``engine.thresholds.METHODS``; e.g. ``percentile`` share=0.01,
        ``target_fpr`` fpr=0.01, ``automatic``, ``best_f1``, ``cost``, ``manual`` value=...), kept in force
        after a retrain until the analyst changes it."""
        if method == "dynamic":
            self.set_dynamic(params.get("window", 1000), params.get("percentile", 99.0))
            return self.threshold_info
        self._apply_threshold(ThresholdRule(method, dict(params)))
        self._mark()
        return self.threshold_info

    def set_dynamic(self, window: int | None, percentile: float = 99.0) -> None:
        """The sliding-window overlay for time-ordered files (None turns it off)."""
        dynamic = None if not window else {"window": int(window), "percentile": float(percentile)}
        if dynamic == self.dynamic:
            return
        self.dynamic = dynamic
        self._recompute_dynamic()
        self._mark()
        self.events.emit("threshold")

    def _recompute_dynamic(self) -> None:
        self._dynamic_cut = None
        if self.dynamic is not None and self.scores is not None and len(self.scores):
            self._dynamic_cut = dynamic_threshold(self.scores, window=self.dynamic["window"],
                                                  percentile=self.dynamic["percentile"])

    def set_costs(self, cost_missed: float, cost_review: float) -> None:
        """The money figures (a missed anomaly, one review): the ``cost`` rule and the suggestion use them."""
        costs = (float(cost_missed), float(cost_review))
        if costs != self.costs:
            self.costs = costs
            self._mark()

    # ------------------------------------------------------------------------------------------
    # retraining with verdicts
    # ------------------------------------------------------------------------------------------
    def rerank(self, *, progress: ProgressCallback = no_progress, should_stop: StopCallback = never) -> Retrained:
        """Compute half of ``retrain`` (engine.feedback.retrain_with_verdicts, the same code path as
        ``simulate-review``)."""
        from engine.feedback import retrain_with_verdicts
        from engine.scoring.blocks import score_in_blocks

        if self.model is None:
            raise AnomalyDeskError("train a model first: there is nothing to retrain")
        frame = self.loaded.frame
        # the first retrain reuses the training's scores of every row (scoring a large file again is
        # the slow part); later ones warm-start from the previous state
        fb = retrain_with_verdicts(self.model, frame, self.schema, self.verdicts_by_row(), progress=progress,
                                   should_stop=should_stop, state=self.feedback_state,
                                   cost_missed=self.costs[0], cost_review=self.costs[1],
                                   scored=self.result if self.feedback_state is None else None)
        result = score_in_blocks(fb.model, frame, should_stop=should_stop) if fb.refitted else None
        order = np.argsort(fb.scores, kind="stable")
        return Retrained(id(frame), fb, result, severity_of(fb.scores, fb.scores[order]), order)

    def next_batch(self, size: int = 10) -> NextBatch:
        """The records to review next, best first. After a retrain: the review loop's pick
        (``engine.feedback.next_batch``: exploration while the queue is cold, the guard against the
        static ranking); before one, the highest-scored records. Records with a verdict (unsure too)
        and records a rule covers are skipped."""
        from engine.feedback import next_batch
        from engine.feedback.rerank import batch_sources, top_rows

        if self.scores is None:
            raise AnomalyDeskError("train a model first: there is nothing to review yet")
        n = len(self.scores)
        done = np.zeros(n, dtype=bool)
        done[list(self.verdicts_by_row())] = True  # unsure counts: it was reviewed
        if self.ruled is not None and len(self.ruled) == n:
            done |= self.ruled
        state = self.feedback_state
        if state is None or len(state.base_z) != n:
            records = top_rows(self.scores, np.flatnonzero(~done), int(size))
            return NextBatch(records, explored=0, static_only=0, favoured=None)
        records = next_batch(state, self.scores, done, size)
        explored, static_only = batch_sources(state, records)
        return NextBatch(records, explored=explored, static_only=static_only, favoured=self.favoured)

    def adopt_retrain(self, outcome: Retrained) -> None:
        self._check_frame(outcome.frame_id)
        fb = outcome.feedback
        before = int(self.flagged.sum()) if self.flagged is not None else 0
        self.model = fb.model
        self.feedback_state = fb.state
        self.favoured = fb.favoured[0] if fb.favoured else None  # the detector name the verdicts favour
        if outcome.result is not None:
            self.result = outcome.result
        self.base_z = np.asarray(fb.state.base_z, dtype=float)
        self.scores = np.asarray(fb.scores, dtype=float)
        self.severity = outcome.severity
        self.score_order = outcome.order
        self.events.emit("scores")
        self._apply_threshold(self.threshold_rule, rescaled=True)  # the analyst's rule stays in force
        self.last_retrain = Retrain(fb.n_anomalies, fb.n_normals, fb.seconds, before, int(self.flagged.sum()))
        self.suggestion = self._suggest()
        self._mark()
        self.events.emit("threshold")

    def _suggest(self) -> Suggestion | None:
        rule = ThresholdRule("cost", {"cost_missed": self.costs[0], "cost_review": self.costs[1]}) \
            if self.costs else ThresholdRule("best_f1")
        try:
            return Suggestion(rule, self.threshold_for(rule))
        except AnomalyDeskError:
            return None

    def apply_suggestion(self) -> None:
        if self.suggestion is not None:
            self.set_threshold(self.suggestion.rule.method, **self.suggestion.rule.params)
            self.suggestion = None

    def retrain(self, *, progress: ProgressCallback = no_progress, should_stop: StopCallback = never) -> None:
        """"Retrain with verdicts": the re-ranked scores and their severity are in force; the threshold
        rule in force is re-applied to them; a rule from the verdicts is offered in ``suggestion``."""
        self.adopt_retrain(self.rerank(progress=progress, should_stop=should_stop))

    # ------------------------------------------------------------------------------------------
    # what-if
    # ------------------------------------------------------------------------------------------
    def what_if(self, record: int, changes: dict):
        """Score the record as it is and with ``changes`` (one row each) with the model in force:
        returns (ScoreResult of the two rows). After a retrain the ranking depends on the whole file
        (regions and rarities the verdicts weighted), so a changed record cannot be ranked: refused."""
        import pandas as pd

        if self.model is None:
            raise AnomalyDeskError("train a model first")
        if self.retrained:
            raise AnomalyDeskError("after Retrain with verdicts a record's score depends on the whole file's "
                                   "ranking, which a changed value cannot be placed in: train again to use the "
                                   "what-if")
        row = self.loaded.frame.iloc[[record, record]].copy()
        for column, value in changes.items():
            if column in row.columns:
                if pd.api.types.is_numeric_dtype(row[column]):
                    row[column] = row[column].astype(float)
                else:
                    row[column] = row[column].astype(object)
                row.iloc[1, row.columns.get_loc(column)] = value
        return self.model.score(row)

    # ------------------------------------------------------------------------------------------
    # projects
    # ------------------------------------------------------------------------------------------
    def project_is_for_this_file(self, project_path: str | Path) -> bool:
        """Whether the project at ``project_path`` reviews the data file now loaded (saving may overwrite it)."""
        from engine.project import Project

        if self.loaded is None:
            return False
        try:
            data_file = Project.load(project_path).data_file
        except (AnomalyDeskError, OSError):
            return False
        return Path(data_file).resolve() == Path(self.loaded.path).resolve()

    def adopt_project(self, opened: dict) -> None:
        """Make a read project the session: its file, reference, settings, scores in force and rule."""
        import json

        from engine.rules import project_rules

        project = opened["project"]
        self.adopt(opened["loaded"])
        self.set_rules(project_rules(project))
        if opened["reference"] is not None:
            self.reference_file = opened["reference"]
        self.detector, self.params = project.detector, dict(project.params)
        extra = project.extra or {}
        if all(isinstance(extra.get(k), (int, float)) for k in ("loss_per_miss", "cost_per_review")):
            self.costs = (float(extra["loss_per_miss"]), float(extra["cost_per_review"]))
        if opened["model"] is not None:
            result, saved = opened["result"], opened["state"]
            self.model, self.result, self.model_dir = opened["model"], result, project.model_dir
            self.scores = np.asarray(result.scores, dtype=float)
            self.severity = np.asarray(result.severity, dtype=float)
            if saved is not None:
                arrays, meta = saved
                self.scores, self.severity = arrays["scores"], arrays["severity"]
                self.base_z = arrays.get("base_z")
                self.reference_scores = arrays.get("reference_scores")
                retrain = json.loads(meta.get("retrain") or "null")
                self.last_retrain = Retrain(**retrain) if isinstance(retrain, dict) else None
            self.events.emit("scores")
            th = project.threshold
            rule, self.dynamic = state.saved_rule(th, extra)
            self._apply_threshold(rule)
            if th.value is not None and rule.method in ("best_f1", "cost", "manual") and saved is not None:
                # the verdicts may have changed since: reopen with the value that was saved
                self.threshold_info = replace(self.threshold_info, value=float(th.value))
                self.events.emit("threshold")
        self.project_path = opened["path"]
        self._mark(False)

    def save(self, project_path: str | Path) -> Path:
        """Write the project (JSON), the model bundle and the scores in force (safetensors) beside it."""
        path = state.save_session(self, project_path)
        self.project_path = path
        self._mark(False)
        return path

    def read_project(self, project_path: str | Path, *, progress: ProgressCallback = no_progress,
                     should_stop: StopCallback = never, read_only: bool = False) -> dict:
        """Compute half of ``open``: the project, its file read, its model scored, its saved scores."""
        return state.read_project(self, project_path, progress=progress, should_stop=should_stop,
                                  read_only=read_only)

    @classmethod
    def open(cls, project_path: str | Path, data_dir: str | Path | None = None, user: str | None = None,
             progress: ProgressCallback = no_progress, should_stop: StopCallback = never,
             read_only: bool = False) -> Session:
        """A session exactly as it was saved: scores, severity, threshold and rule, verdicts.
        ``read_only`` (reports): the verdict store is opened read-only and never created or migrated."""
        s = cls(data_dir=data_dir, user=user)
        s.adopt_project(s.read_project(project_path, progress=progress, should_stop=should_stop,
                                       read_only=read_only))
        return s

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


# ----------------------------------------------------------------------------------------------
def _top_k(scores: np.ndarray, k: int, rule: ThresholdRule) -> Threshold:
    """The threshold flagging the top ``k`` of ``scores`` (ties may add a few)."""
    s = np.asarray(scores, dtype=float)
    k = int(min(max(k, 0), len(s)))
    value = float(np.sort(s)[::-1][k - 1]) if k else float(s.max()) + 1.0
    n = int((s >= value).sum())
    return Threshold(value, rule.method, f"{rule.describe().capitalize()}, kept on the retrained ranking: "
                     f"the top {k:,} records stay flagged ({n:,} with ties).", n)


