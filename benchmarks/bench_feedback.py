"""What verdicts are worth: anomalies found within a review budget, with and without feedback.

For every labelled benchmark file (and the synthetic ERP ledger) this runs ``simulate_review`` (the
GUI's own feedback path: verdict store + ``retrain_with_verdicts``) and tabulates, at 100 reviews
(and 300 where the issue asks), the anomalies found by the static ranking of the detector (the peer,
measured in the same run) and with feedback, their ratio, the retrain time, and pass/fail against
issue 4's figures:

- mammography: feedback >= 70 at 100 and >= 166 at 300 (published active anomaly discovery: about
  77 and 165; static isolation forest about 36 and 76);
- cardio, thyroid, annthyroid, pendigits, mammography: feedback >= 1.3 x static at 100 (or all found);
- ledger (100,000 rows, seed 7): all 30 ``local`` anomalies within 300 reviews;
- every file and budget: feedback finds at least as many as static.

Every file is tabulated at 100 and 300 reviews; the ledger rows also give the ``local``/``global``
anomalies found. "retrain s" is the mean/max wall time of one retrain after a batch (the detector is
fitted once), "prep s" the first call (scoring, region forest, column profile), "total s" the whole
run including the detector's fit.

Usage: .venv/bin/python benchmarks/bench_feedback.py [--detector auto] [--only NAME ...] [--no-ledger]
       [--ledger-rows 100000] [--seed 0] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

SHARED = REPO_ROOT.parent / "shared"
DATA = SHARED / "data" / "benchmarks"
GENERATOR = SHARED / "tools" / "make_journal_entries.py"

# name -> (file, budgets); the ratio rule applies to the first five
FILES = {
    "cardio": ("cardio.csv", (100, 300)),
    "thyroid": ("thyroid.csv", (100, 300)),
    "annthyroid": ("annthyroid.csv", (100, 300)),
    "pendigits": ("pendigits.csv", (100, 300)),
    "mammography": ("mammography.csv", (100, 300)),
    "shuttle": ("shuttle.csv", (100, 300)),
    "kdd_test": ("kdd_test.csv", (100, 300)),
    "ecg5000_sample": ("ecg5000_sample.csv", (100, 300)),
}
RATIO_RULE = {"cardio", "thyroid", "annthyroid", "pendigits", "mammography"}
ABSOLUTE_RULE = {("mammography", 100): 70, ("mammography", 300): 166}
PUBLISHED_AAD = {("mammography", 100): (36, 77), ("mammography", 300): (76, 165), ("annthyroid", 100): (20, 64)}


def _load(path: Path):
    from engine.io import label_values, label_vector, load

    loaded, schema = load(path)
    if schema.label_column is None:
        raise SystemExit(f"{path}: no label column inferred")
    return loaded.frame, schema, label_vector(loaded.frame, schema), label_values(loaded.frame, schema)


def _run(name: str, path: Path, budget: int, detector: str, seed: int, values=False) -> dict:
    from engine.simulation import simulate_review

    frame, schema, y, raw = _load(path)
    t0 = time.perf_counter()
    r = simulate_review(frame, schema, y, detector=detector, budget=budget, batch=10, seed=seed,
                        label_values=raw if values else None)
    r["seconds"] = time.perf_counter() - t0
    r["name"] = name
    return r


def _verdict(name: str, budget: int, r: dict) -> tuple[str, str]:
    static, fb, total = r["found_static"][-1], r["found_feedback"][-1], r["anomalies"]
    rules, ok = [], True
    if (name, budget) in ABSOLUTE_RULE:
        need = ABSOLUTE_RULE[(name, budget)]
        rules.append(f">={need}")
        ok &= fb >= need
    if name in RATIO_RULE and budget == 100:
        rules.append(">=1.3x")
        ok &= fb >= 1.3 * static or fb >= min(total, budget)
    rules.append(">=static")  # feedback must never find fewer than the static ranking
    ok &= fb >= static
    return ("PASS" if ok else "FAIL"), " ".join(rules)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--only", nargs="*", help="benchmark names to run (default: all)")
    ap.add_argument("--no-ledger", action="store_true")
    ap.add_argument("--ledger-rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)

    results = []
    print(f"detector {args.detector}, batch 10, seed {args.seed}; static = the same detector's ranking without "
          "feedback (peer, same run)")
    header = (f"{'dataset':<15}{'rows':>8}{'anom':>6}{'budget':>7}{'static':>8}{'feedback':>9}{'ratio':>7}"
              f"{'retrain s mean/max':>20}{'prep s':>7}{'total s':>9}  result")
    print(header)
    print("-" * len(header))
    fails = 0
    for name, (file, budgets) in FILES.items():
        if args.only and name not in args.only:
            continue
        path = DATA / file
        if not path.exists():
            print(f"{name:<15} missing {path}")
            continue
        r = _run(name, path, max(budgets), args.detector, args.seed)
        for budget in budgets:
            k = budget // 10 - 1
            view = dict(r, found_static=r["found_static"][: k + 1], found_feedback=r["found_feedback"][: k + 1])
            static, fb = view["found_static"][-1], view["found_feedback"][-1]
            status, rule = _verdict(name, budget, view)
            fails += status == "FAIL"
            ratio = fb / static if static else float("inf") if fb else 1.0
            extra = ""
            if (name, budget) in PUBLISHED_AAD:
                ps, pf = PUBLISHED_AAD[(name, budget)]
                extra = f"  (published: static ~{ps}, AAD ~{pf})"
            print(f"{name:<15}{r['rows']:>8}{r['anomalies']:>6}{budget:>7}{static:>8}{fb:>9}{ratio:>7.2f}"
                  f"{r['retrain_seconds_mean']:>11.3f}/{r['retrain_seconds_max']:<8.3f}{r['prepare_seconds']:>7.1f}{r['seconds']:>9.1f}  "
                  f"{status} {rule}{extra}", flush=True)
            results.append({"name": name, "budget": budget, "static": static, "feedback": fb, "status": status,
                            "found_static": view["found_static"], "found_feedback": view["found_feedback"],
                            "retrain_seconds_mean": r["retrain_seconds_mean"],
                            "retrain_seconds_max": r["retrain_seconds_max"],
                            "prepare_seconds": r["prepare_seconds"], "detector": r["detector"]})

    if not args.no_ledger and (not args.only or "ledger" in args.only):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ledger.csv"
            subprocess.run([sys.executable, str(GENERATOR), "--rows", str(args.ledger_rows), "--seed", "7",
                            "--out", str(path)], check=True, capture_output=True)
            r = _run("ledger", path, 300, args.detector, args.seed, values=True)
        for budget in (100, 300):
            k = budget // 10 - 1
            static, fb = r["found_static"][k], r["found_feedback"][k]
            by = {v: (d["found_static"][k], d["found_feedback"][k], d["count"]) for v, d in r["by_value"].items()}
            loc = by.get("local", (0, 0, 0))
            ok = fb >= static and (budget < 300 or loc[1] >= loc[2] > 0)
            fails += not ok
            rule = ">=static" + (" all local found" if budget == 300 else "")
            ratio = fb / static if static else float("inf") if fb else 1.0
            print(f"{'ledger':<15}{r['rows']:>8}{r['anomalies']:>6}{budget:>7}{static:>8}{fb:>9}{ratio:>7.2f}"
                  f"{r['retrain_seconds_mean']:>11.3f}/{r['retrain_seconds_max']:<8.3f}{r['prepare_seconds']:>7.1f}{r['seconds']:>9.1f}  "
                  f"{'PASS' if ok else 'FAIL'} {rule}")
            print(f"{'':<15}" + "; ".join(f"{v} {s_}/{c} static, {f_}/{c} feedback" for v, (s_, f_, c) in sorted(by.items())))
            results.append({"name": "ledger", "budget": budget, "static": static, "feedback": fb,
                            "by_value": {v: {"static": s_, "feedback": f_, "count": c} for v, (s_, f_, c) in by.items()},
                            "status": "PASS" if ok else "FAIL", "retrain_seconds_mean": r["retrain_seconds_mean"],
                            "retrain_seconds_max": r["retrain_seconds_max"],
                            "prepare_seconds": r["prepare_seconds"], "detector": r["detector"]})
        local = r["by_value"].get("local", {"count": 0, "found_feedback": [0]})
        first_all = next((10 * (i + 1) for i, v in enumerate(local["found_feedback"]) if v >= local["count"] > 0),
                         None)
        print(f"{'':<15}all local found after {first_all} reviews" if first_all else f"{'':<15}not all local found")
    print(f"\n{len(results) - fails} of {len(results)} rows without FAIL; mean ratio feedback/static at 100: "
          f"{np.mean([x['feedback'] / max(x['static'], 1) for x in results if x['budget'] == 100]):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
