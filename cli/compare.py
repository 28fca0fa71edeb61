"""``compare CSV --label-column COL``: train several detectors on the same rows and compare them
(AUCROC, AUCPR, precision/recall/F1 at the default threshold, times, sizes, disagreements), with an
optional contamination study (AUCROC when a share of known anomalies is mixed into training)."""

from __future__ import annotations

import json
import math

from cli.train import StderrProgress, check_device
from engine.errors import AnomalyDeskError
from engine.safe_json import jsonable


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare detectors on a labelled CSV (metrics, times, sizes, "
                                       "disagreements, contamination study)")
    p.add_argument("csv", help="labelled CSV to score")
    p.add_argument("--label-column", required=True, help="ground-truth column (never used as a feature)")
    p.add_argument("--normal-value", help="label value meaning normal (default: 0/false, else the most frequent)")
    p.add_argument("--train-csv", help="train on this reference file of known-good rows instead of CSV")
    p.add_argument("--detectors", help="comma-separated detector names (default: every available one)")
    p.add_argument("--contamination", metavar="PCTS",
                   help="also run a contamination study at these percentages of anomalies in the training "
                        "rows, e.g. 0,5,10,30,50")
    p.add_argument("--epochs", type=int, help="training epochs for the deep detectors")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--details", action="store_true",
                   help="with --json: also the disagreeing row indices and the ROC/PR curves")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def parse_detectors(text: str | None) -> list[str]:
    from engine.detectors import DETECTOR_NAMES, available_detectors

    if text is None:
        return available_detectors()
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise AnomalyDeskError("--detectors: give at least one detector name")
    unknown = [n for n in names if n not in DETECTOR_NAMES]
    if unknown:
        raise AnomalyDeskError(f"--detectors: unknown detector(s) {', '.join(unknown)}; choose from "
                               f"{', '.join(DETECTOR_NAMES)}")
    return list(dict.fromkeys(names))


def parse_shares(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        part = part.strip().rstrip("%")
        if not part:
            continue
        try:
            pct = float(part)
        except ValueError:
            raise AnomalyDeskError(f"--contamination: {part!r} is not a percentage (use e.g. 0,5,10,30,50)") \
                from None
        if not 0.0 <= pct < 100.0:
            raise AnomalyDeskError(f"--contamination: {pct:g}% is outside 0-100 (exclusive of 100)")
        out.append(pct / 100.0)
    if not out:
        raise AnomalyDeskError("--contamination: give at least one percentage, e.g. 0,5,10,30,50")
    return out


def _f(v, digits: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def run(args) -> int:
    from engine.compare import compare_detectors, contamination_study
    from engine.detectors import accepted_params
    from engine.evaluation import load_labelled, load_training_frame

    check_device(args.device)
    if args.epochs is not None and args.epochs < 1:
        raise AnomalyDeskError("--epochs must be at least 1")
    detectors = parse_detectors(args.detectors)
    shares = parse_shares(args.contamination) if args.contamination is not None else None
    params = {}
    if args.epochs is not None:
        params = {n: accepted_params(n, {"epochs": int(args.epochs)}) for n in detectors}
    loaded, schema, anomalous, _values = load_labelled(args.csv, args.label_column, args.normal_value)
    train = load_training_frame(args.train_csv, schema) if args.train_csv else None
    progress = StderrProgress()
    comparison = compare_detectors(loaded.frame, schema, detectors, train_frame=train, labels=anomalous,
                                   label_source=f"the label column '{args.label_column}'", params=params,
                                   seed=args.seed, device=args.device, progress=progress, keep_going=True)
    out = comparison.summary(with_rows=args.details)
    out.update(file=str(args.csv), train_file=str(args.train_csv) if args.train_csv else None,
               label_column=args.label_column, normal_value=schema.normal_value)
    studies = []
    if shares is not None:
        for name in [r.name for r in comparison.runs]:
            study = contamination_study(loaded.frame, schema, anomalous, name, shares=shares, train_frame=train,
                                        params=params.get(name), seed=args.seed, device=args.device,
                                        progress=progress)
            studies.append(study.summary())
        out["contamination"] = studies
    out = jsonable(out)
    if args.json:
        if not args.details:
            for d in out["detectors"]:
                d.pop("roc", None)
                d.pop("pr", None)
        print(json.dumps(out))
        return 0
    _print_table(out)
    return 0


def _print_table(out: dict) -> None:
    train = f"trained on {out['train_file']} ({out['train_rows']} rows)" if out["train_file"] else \
        "trained on the file itself, labels hidden"
    print(f"{out['file']}: {out['rows']} rows, {out['n_anomalies']} anomalies; {train}")
    head = f"{'detector':<12} {'AUCROC':>7} {'AUCPR':>7} {'prec':>6} {'recall':>6} {'F1':>6} " \
           f"{'bestF1':>6} {'flagged':>7} {'fit s':>7} {'score s':>7} {'params':>9} {'bytes':>10}"
    print(head)
    print("-" * len(head))
    for d in out["detectors"]:
        print(f"{d['detector']:<12} {_f(d['aucroc']):>7} {_f(d['aucpr']):>7} {_f(d['precision'], 3):>6} "
              f"{_f(d['recall'], 3):>6} {_f(d['f1'], 3):>6} {_f(d['best_f1'], 3):>6} {d['flagged']:>7} {d['fit_seconds']:>7.2f} "
              f"{d['score_seconds']:>7.2f} {d['parameters']:>9,} {d['model_bytes']:>10,}")
    for name, why in (out.get("failures") or {}).items():
        print(f"{name:<12} not compared: {why}")
    print("precision/recall/F1 at each detector's default threshold (automatic, else the top 1%); "
          "bestF1 at the best threshold for the labels (an upper bound)")
    if out["disagreements"]:
        print("\ndisagreements (flagged by one, not the other):")
        for d in out["disagreements"]:
            print(f"  {d['a'] + ' not ' + d['b']:<28} {d['only_a']:>6}    {d['b'] + ' not ' + d['a']:<28} "
                  f"{d['only_b']:>6}    both {d['both']}")
    for study in out.get("contamination") or []:
        print(f"\ncontamination study, {study['detector']}: {study['train_rows']} training rows, "
              f"measured on {study['eval_rows']} held-out rows ({study['eval_anomalies']} anomalies)")
        for p in study["points"]:
            figure = f"AUCROC {_f(p['aucroc'])}" if p["skipped"] is None else f"skipped: {p['skipped']}"
            print(f"  {100 * p['share']:5.1f}% anomalies ({p['anomalies']:>5} of {p['anomalies'] + p['normals']}): "
                  f"{figure}")
        for note in study["notes"][:1]:
            print(f"  {note}")
