"""``report SCORES.csv [--model MODEL_DIR] [--project FILE] --format csv|xlsx|html|pdf --out FILE``.

Turns a scores file (written by ``score``) into the review queue (csv, xlsx) or a report (html,
pdf: dataset, model card, threshold, score histogram, counts, precision/recall/ROC/PR when labels
or verdicts exist, the top flagged records with their contributions and verdicts). ``--project``
adds the analyst's verdicts, notes and threshold; ``--model`` adds the model card and full
per-feature contributions for the top records.
"""

from __future__ import annotations

import sys
from pathlib import Path

FORMATS = ("csv", "xlsx", "html", "pdf")


def register(sub) -> None:
    p = sub.add_parser("report", help="export the queue (csv/xlsx) or a report (html/pdf) from a scores file",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("scores", metavar="SCORES.csv", help="scores file written by 'score'")
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
    from engine.errors import AnomalyDeskError
    from engine.project import Project

    project = Project.load(path)
    verdicts = {}
    if project.verdict_db:
        db = Path(project.verdict_db)
        if not db.is_file():
            raise AnomalyDeskError(f"{path}: the project's verdict database {db} does not exist")
        from engine.feedback import VerdictStore

        store = VerdictStore(db)
        try:
            verdicts = store.all()
        finally:
            store.close()
    return project, verdicts


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
    project, verdicts = (None, {})
    if args.project:
        project, verdicts = _load_project(args.project)
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
    scores_file = read_scores_file(args.scores)
    if threshold is None and scores_file.flagged_threshold() is None and model is not None:
        threshold, method = model_threshold(model)
    context = context_from_scores_file(
        scores_file, model=model, model_metadata=meta, verdicts=verdicts, threshold=threshold,
        threshold_method=method, label_column=args.label_column, normal_value=args.normal_value,
        title=args.title, author=args.author, notes=args.notes,
        data_file=project.data_file if project is not None else "", top_n=args.top)

    out = build_report(args.out, fmt, context)
    print(f"wrote {out} ({fmt}, {len(scores_file.table):,} records, {len(verdicts):,} verdicts)", file=sys.stderr)
    return 0
