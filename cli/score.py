"""``score FILE --model MODEL_DIR --out SCORES.csv [--chunk-rows N] [--cluster local:N|ADDRESS]``: score a
file (CSV or Parquet) with a saved model.

The input is streamed in chunks and the output (CSV, or Parquet for a .parquet name) written
incrementally (engine.scoring.files), so files larger than memory work; with ``--cluster`` the file is
split into partitions scored by Dask workers (engine.scoring.cluster); progress goes to stderr. The file is checked against the model's schema
first: one that does not fit is refused, naming the columns; other differences (extra columns,
categories the model has no level for, unparseable values) are reported and handled. The output
appears only when complete (temporary file, then rename). With ``--project`` the project's threshold
and its rules ("treat records like this as normal") apply: a record a rule matches is not flagged
and the ``rule`` column names the rule. When the file does not look like the data the model learnt
(engine.drift) a warning names the columns that moved and suggests training on the file.
"""

from __future__ import annotations

import sys
import time

from engine.scoring.files import DEFAULT_CHUNK_ROWS


def register(sub) -> None:
    p = sub.add_parser("score", help="score a CSV or Parquet file with a saved model, streaming it in chunks",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("csv", metavar="FILE", help="the file to score: CSV, or Parquet (a .parquet file or a folder of parts)")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="model bundle folder written by 'train'")
    p.add_argument("--out", required=True, metavar="SCORES.csv",
                   help="where to write the scores: .csv, or .parquet; with --cluster a name ending in / "
                        "keeps the folder of Parquet parts")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, metavar="N",
                   help=f"rows per chunk (default {DEFAULT_CHUNK_ROWS:,}); memory grows with it")
    p.add_argument("--threshold", type=float, default=None,
                   help="score at or above which a record is flagged (default: the project's, else the model's)")
    p.add_argument("--project", metavar="FILE",
                   help="project file whose threshold and rules to apply (records a rule matches are not flagged)")
    p.add_argument("--top-features", type=int, default=3, metavar="K",
                   help="contributing features listed per record (default 3)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="batches scored side by side, one thread each (default: the cores not already busy, "
                        "measured over a tenth of a second); for more than one machine use --cluster")
    p.add_argument("--cluster", metavar="local:N|ADDRESS",
                   help="score on Dask: local:N starts N worker processes here; tcp://host:8786 uses a "
                        "running scheduler (needs the 'cluster' extra)")
    p.add_argument("--blocksize", type=int, default=None, metavar="BYTES",
                   help="with --cluster: bytes of CSV per partition (default 32 MiB)")
    p.add_argument("--quiet", action="store_true", help="no progress or notes on stderr")
    p.set_defaults(func=run)


class _Progress:
    """A progress line on stderr: redrawn in place on a terminal, every 10% otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last_decile = -1
        self.last_draw = 0.0

    def __call__(self, fraction: float, message: str = "", **metrics) -> None:
        if self.quiet:
            return
        rate = metrics.get("rows_per_second")
        text = f"{100 * fraction:5.1f}%  {message}" + (f"  ({rate:,.0f} rows/s)" if rate else "")
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw > 0.2 or fraction >= 1.0:
                bar = "#" * int(30 * fraction)
                print(f"\r[{bar:<30}] {text}", end="", file=sys.stderr, flush=True)
                self.last_draw = now
        else:
            decile = int(10 * fraction)
            if decile > self.last_decile:
                self.last_decile = decile
                print(f"scoring: {text}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)


def run(args) -> int:
    from engine.errors import AnomalyDeskError
    from engine.model_reuse import load_model
    from engine.scoring.files import idle_cores, score_file, set_threads

    if args.chunk_rows < 1:
        raise AnomalyDeskError("--chunk-rows must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise AnomalyDeskError("--threads must be at least 1")
    model = load_model(args.model)
    threshold = args.threshold
    rules = []
    if args.project:
        from engine.project import Project
        from engine.rules import project_rules

        project = Project.load(args.project)
        rules = project_rules(project)
        if threshold is None:
            threshold = project.threshold.value
    progress = _Progress(args.quiet)

    def show_differences(diff) -> None:
        if args.quiet:
            return
        for line in diff.lines():
            print(f"note: {line}", file=sys.stderr)

    try:
        if args.cluster:
            summary = _on_cluster(args, threshold, progress, show_differences, rules)
        else:
            set_threads(args.threads or idle_cores())
            summary = score_file(model, args.csv, args.out, chunk_rows=args.chunk_rows, threshold=threshold,
                                 top_k_features=args.top_features, progress=progress,
                                 on_differences=show_differences, rules=rules)
    finally:
        progress.done()
    if not args.quiet:
        diff = summary.differences
        if diff.unseen or diff.invalid:  # totals over the whole file (the notes above cover the first chunk)
            for line in diff.lines():
                if "level" in line or "not numbers" in line:
                    print(f"note (whole file): {line}", file=sys.stderr)
        threshold = "no threshold" if summary.threshold is None else f"threshold {summary.threshold:.6g}"
        print(f"scored {summary.rows:,} rows in {summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s); "
              f"{summary.flagged:,} flagged at {threshold} ({summary.threshold_method}); wrote {args.out}",
              file=sys.stderr)
        for rule in rules:
            missing = rule.missing_columns(summary.columns)
            print(f"rule '{rule.name}' ({rule.describe()}): {summary.by_rule.get(rule.name, 0):,} record(s) treated "
                  "as normal" + (f"; the file lacks column(s) {', '.join(missing)}" if missing else ""),
                  file=sys.stderr)
        if rules:
            print(f"{summary.above_by_rule:,} record(s) at or above the threshold not flagged because a rule matched",
                  file=sys.stderr)
    drift = summary.drift
    if drift is not None and drift.drifted:  # shown even with --quiet: the scores may mean little
        for line in drift.lines():
            print(f"warning: {line}", file=sys.stderr)
    return 0


def _on_cluster(args, threshold, progress, show_differences, rules):
    from engine.scoring.cluster import DEFAULT_BLOCKSIZE, connect, describe, score_on_cluster

    with connect(args.cluster) as client:
        print(f"scoring on {describe(client)}", file=sys.stderr, flush=True)
        summary = score_on_cluster(client, args.model, args.csv, args.out, threshold=threshold,
                                   top_k_features=args.top_features, blocksize=args.blocksize or DEFAULT_BLOCKSIZE,
                                   progress=progress, on_differences=show_differences, rules=rules)
    print(f"{len(summary.workers)} Dask worker process(es) scored {summary.chunks} partition(s): "
          f"{', '.join(summary.workers)}", file=sys.stderr)
    return summary
