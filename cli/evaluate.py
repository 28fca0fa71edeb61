"""``evaluate CSV --label-column COL``: fit (labels hidden, or on --train-csv), score, and measure."""

from __future__ import annotations

import json
import sys

from cli.train import StderrProgress, add_param_option, check_device, detector_params
from engine.detectors import DETECTOR_NAMES
from engine.safe_json import jsonable


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="measure a detector against a labelled CSV (AUCROC, AUCPR, ...)")
    p.add_argument("csv", help="labelled CSV to score")
    p.add_argument("--label-column", required=True, help="ground-truth column (never used as a feature)")
    p.add_argument("--normal-value", help="label value meaning normal (default: 0/false, else the most frequent)")
    p.add_argument("--train-csv", help="train on this reference file of known-good rows instead of CSV")
    p.add_argument("--detector", default="auto", choices=DETECTOR_NAMES, help="detector (default: auto)")
    p.add_argument("--epochs", type=int, help="training epochs for the deep detectors")
    add_param_option(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.evaluation import evaluate

    check_device(args.device)
    params = detector_params(args.detector, args.epochs, args.param)
    result = evaluate(args.csv, args.label_column, normal_value=args.normal_value, train_csv=args.train_csv,
                      detector=args.detector, params=params, seed=args.seed, device=args.device,
                      progress=StderrProgress())
    result = jsonable(result)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.csv}: {result['rows']} rows, {result['n_anomalies']} anomalies, detector {result['detector']}")
    for key in ("aucroc", "aucpr", "p_at_n"):
        v = result[key]
        print(f"  {key:<16} {'n/a' if v is None else f'{v:.4f}'}")
    print(f"  found_at_budget  {result['found_at_budget']} of the top {result['budget']}")
    print(f"  fit / score      {result['fit_seconds']:.1f} s / {result['score_seconds']:.1f} s")
    for value, m in result["by_value"].items():
        auc = "n/a" if m["aucroc"] is None else f"{m['aucroc']:.4f}"
        print(f"  {value:<16} {m['in_top_1pct']}/{m['count']} in the top 1%, AUCROC {auc}")
    for name, m in (result.get("members") or {}).items():
        print(f"  member {name:<9} AUCROC {m['aucroc']:.4f}  weight {m.get('weight', float('nan')):.3f}",
              file=sys.stdout)
    return 0
