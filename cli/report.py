"""``report [SCORES.csv] [--model MODEL_DIR] [--project FILE] --format csv|xlsx|html|pdf --out FILE``.

Turns a scores file (written by ``score``), or a saved project alone, into the review queue (csv), a
workbook (xlsx: Summary, Queue and Verdicts sheets) or a report (html, pdf: dataset, model card,
threshold, score histogram, counts, precision/recall/ROC/PR when labels or verdicts exist, rules in
force, confirmed anomalies with their notes, the top flagged records with their contributions and
verdicts). ``--project`` adds the analyst's verdicts, notes, rules and threshold; without a scores
file the project is opened (its data file and model) and scored again. ``--model`` adds the model
card and full per-feature contributions for the top records. The verdict database is only read.
"""

from __future__ import annotations

import sys
from pathlib import Path

FORMATS = ("csv", "xlsx", "html", "pdf")


def register(sub) -> None:
    p = sub.add_parser("report", help="export the queue (csv/xlsx) or a report (html/pdf) from a scores file "
                                      "or a project", description=__doc__.split("\n\n")[0])
    p.add_argument("scores", metavar="SCORES.csv", nargs="?", default=None,
                   help="scores file written by 'score' (optional with --project)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model bundle: model card and full contributions")
    p.add_argument("--project", metavar="FILE", help="project file: verdicts, notes, threshold (and model)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from --out's suffix)")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write")
    p.add_argument("--title", default="Anomaly Desk report")
    p.add_argument("--author", default="")
    p.add_argument("--notes", default="", help="text shown at the top of the report")
    p.add_argument("--label-column", metavar="COL", help="ground-truth column for precision/recall/ROC/PR")
    p.add_argument("--normal-value", metavar="VALUE", help="the label value meaning normal (default: inferred)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="flagged records shown in detail (default 10)")
    p.set_defaults(func=run)


def _load_project(path: str):
    """The project, and how to open its verdict store read-only (``report`` never writes to it, not even
    its journal mode); only the store whose id the project recorded is opened."""
    from engine.project import Project, open_verdict_store

    project = Project.load(path)
    return project, (lambda: open_verdict_store(project, path, read_only=True)) if project.verdict_db else None


def _open_session(path: str):
    """The project opened as a session (its data file scored by its model), read-only where the
    session allows it."""
    import inspect

    from engine.errors import AnomalyDeskError

    try:
        from engine.session import Session
    except ImportError:
        raise AnomalyDeskError("this build cannot open a project without a scores file: give SCORES.csv "
                               "(written by 'score') with --project") from None
    opener = Session.open
    try:
        accepts = {"read_only", "readonly"} & set(inspect.signature(opener).parameters)
    except (TypeError, ValueError):
        accepts = set()
    return opener(path, **{name: True for name in accepts})


def _context_from_project(args):
    from engine.reports.context import report_context_from_session
    from engine.reports.scores_file import labels_from_column

    session = _open_session(args.project)
    try:
        labels = None
        if args.label_column:
            from engine.errors import DataError

            frame = session.frame
            if frame is None or args.label_column not in frame.columns:
                raise DataError(f"no label column '{args.label_column}' in the project's data file",
                                column=args.label_column)
            labels = labels_from_column(frame[args.label_column], args.normal_value)
        context = report_context_from_session(session, args.title, args.author, args.notes, top_n=args.top,
                                              labels=labels)
        if labels is not None:
            context.label_source = f"the label column '{args.label_column}'"
        return context
    finally:
        close = getattr(session, "close", None)
        if callable(close):
            close()


def run(args) -> int:
    from engine.errors import AnomalyDeskError
    from engine.model_reuse import load_model, model_metadata, model_threshold
    from engine.reports import build_report
    from engine.reports.scores_file import context_from_scores_file, read_scores_file

    fmt = (args.format or Path(args.out).suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise AnomalyDeskError(f"cannot tell the format from '{args.out}': give --format {'|'.join(FORMATS)}")
    if args.top < 0:
        raise AnomalyDeskError("--top must be 0 or more")
    if args.scores is None:
        if not args.project:
            raise AnomalyDeskError("give a scores file (written by 'score') or --project FILE")
        context = _context_from_project(args)
        out = build_report(args.out, fmt, context)
        print(f"wrote {out} ({fmt}, {len(context.scores):,} records, {len(context.verdicts):,} verdicts)",
              file=sys.stderr)
        return 0
    project, open_store, store, verdicts, attachment = None, None, None, {}, None
    if args.project:
        project, open_store = _load_project(args.project)
    model_dir = args.model or (project.model_dir if project is not None else None)
    model, meta = None, None
    if model_dir:
        model = load_model(model_dir)
        meta = model_metadata(None, model) or None
    threshold, method = None, ""
    if project is not None and project.threshold.value is not None:
        threshold = float(project.threshold.value)
        method = f"{project.threshold.method} (from the project)" + (
            f", parameter {project.threshold.parameter:g}" if project.threshold.parameter is not None else "")
    try:
        scores_file = read_scores_file(args.scores)
        if open_store is not None:
            store = open_store()
            # by key, and by content where rows were reordered or removed; changed rows are not attached
            schema = getattr(model, "schema_", None)
            contents = scores_file.content_hashes(schema) if schema is not None else None
            attachment = store.attach_report(scores_file.keys, contents)
            keys = scores_file.keys
            verdicts = {keys[i]: record for i, record in attachment.matched.items()}
    finally:
        if store is not None:
            store.close()
    notes = args.notes
    if attachment is not None:
        print(f"verdicts: {attachment.summary()}", file=sys.stderr)
        if not attachment.complete:
            notes = (notes + "\n\n" if notes else "") + f"Verdicts: {attachment.summary()}."
    if threshold is None and scores_file.flagged_threshold() is None and model is not None:
        threshold, method = model_threshold(model)
    context = context_from_scores_file(
        scores_file, model=model, model_metadata=meta, verdicts=verdicts, threshold=threshold,
        threshold_method=method, label_column=args.label_column, normal_value=args.normal_value,
        title=args.title, author=args.author, notes=notes,
        data_file=project.data_file if project is not None else "", top_n=args.top)
    if project is not None:
        _describe_rules(context, project)

    out = build_report(args.out, fmt, context)
    told = (f"{attachment.attached:,} of {attachment.total:,} verdicts attached" if attachment is not None
            else "no verdicts")
    print(f"wrote {out} ({fmt}, {len(scores_file.table):,} records, {told})", file=sys.stderr)
    return 0


def _describe_rules(context, project) -> None:
    """The project's rules, by name, in the report: what each says, and those the scores file did
    not apply (it was scored without the project) listed as covering nothing."""
    from engine.rules import project_rules

    rules = {r.name: r for r in project_rules(project)}
    for listed in context.rules:
        if listed.name in rules:
            listed.description = rules[listed.name].describe()
