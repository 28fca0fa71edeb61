"""``simulate-review CSV --label-column COL``: replay a review with the label column as the analyst.

Each round takes the ``--batch`` records ``next_batch`` puts next in the queue (the top of the current
ranking; exploration over detectors and regions while no anomaly is confirmed), records their labels
as verdicts (in a verdict store, as the GUI does), retrains with all verdicts so far through the same
``retrain_with_verdicts`` the GUI's "Retrain with verdicts" uses, and repeats until ``--budget``
records are reviewed. Prints anomalies found after each batch without (static) and with feedback.
"""

from __future__ import annotations

import json
import sys

from cli.train import add_param_option, detector_params
from engine.detectors import DETECTOR_NAMES
from engine.errors import AnomalyDeskError, DataError


def register(sub) -> None:
    p = sub.add_parser("simulate-review", help="measure what feedback is worth: replay a review with the labels",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("csv", help="labelled CSV file")
    p.add_argument("--label-column", required=True, help="column holding the ground truth (never a feature)")
    p.add_argument("--normal-value", default=None,
                   help="label value meaning normal (default: 0/false, or the most frequent value)")
    p.add_argument("--budget", type=int, default=100, help="records reviewed in all (default 100)")
    p.add_argument("--batch", type=int, default=10, help="records reviewed between two retrains (default 10)")
    p.add_argument("--detector", default="auto", choices=DETECTOR_NAMES, help="detector name (default auto)")
    add_param_option(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.io import infer_schema, label_vector, load
    from engine.pipeline import AnomalyModel
    from engine.schema import SchemaOverrides
    from engine.simulation import simulate_review

    if args.budget < 1 or args.batch < 1:
        raise AnomalyDeskError("--budget and --batch must be at least 1")
    loaded, schema = load(args.csv)
    frame = loaded.frame
    if args.label_column not in frame.columns:
        raise DataError(f"no label column '{args.label_column}' in the data (columns: "
                        f"{', '.join(map(str, frame.columns[:20]))})", file=args.csv, column=args.label_column)
    schema = SchemaOverrides(label_column=args.label_column, normal_value=args.normal_value).apply(schema)
    if schema.normal_value is None:  # a column not inferred as the label: 0/false, else the most frequent
        schema.normal_value = infer_schema(frame[[args.label_column]]).normal_value or str(
            frame[args.label_column].astype(str).value_counts().index[0])
    labels = label_vector(frame, schema)
    if labels.all() or not labels.any():
        raise DataError(f"the label column needs both normal and anomalous rows; normal value "
                        f"'{schema.normal_value}' matches {'no' if labels.all() else 'every'} row",
                        file=args.csv, column=args.label_column)
    raw = frame[args.label_column].astype(str).str.strip().to_numpy()
    several = len(set(raw[labels])) > 1  # e.g. global and local anomalies: report each
    model = AnomalyModel(args.detector, params=detector_params(args.detector, None, args.param), seed=args.seed)
    result = simulate_review(frame, schema, labels, detector=args.detector, budget=args.budget,
                             batch=args.batch, seed=args.seed, label_values=raw if several else None, model=model)
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"{args.csv}: {result['rows']} rows, {result['anomalies']} anomalies, detector {result['detector']}")
    print(f"{'reviewed':>9} {'static':>7} {'feedback':>9}")
    for n, s, f in zip(result["reviewed"], result["found_static"], result["found_feedback"], strict=True):
        print(f"{n:>9} {s:>7} {f:>9}")
    print(f"found_static {result['found_static'][-1]}, found_feedback {result['found_feedback'][-1]} "
          f"at {result['budget']} reviews")
    if result.get("favoured") and result["favoured"][-1]:
        print(f"the verdicts favour {result['favoured'][-1]} at the end")
    for value, d in result.get("by_value", {}).items():
        print(f"  {value}: {d['count']} in the data, found static {d['found_static'][-1]}, "
              f"with feedback {d['found_feedback'][-1]}")
    print(f"retrain seconds: mean {result['retrain_seconds_mean']:.3f}, max {result['retrain_seconds_max']:.3f} "
          f"(first call {result['prepare_seconds']:.2f} s, detector fit {result['fit_seconds']:.2f} s)")
    return 0
