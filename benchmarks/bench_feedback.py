"""What verdicts are worth: anomalies found within a review budget, with and without feedback (issue 18).

For every dev file (the 22 ADBench files, KDD, the ECG5000 sample and the synthetic ERP ledger) and
every seed this runs ``simulate_review`` (the GUI's own feedback path: verdict store,
``retrain_with_verdicts`` and ``next_batch``), budget 300 in batches of 10, and tabulates the anomalies
found by the static ranking of the detector (the peer, measured in the same run) and with feedback at
100 and 300 reviews, per seed. Checks:

- total found with feedback at 100 reviews >= 1.6 x static (all files and seeds together);
- no file below static: at every batch, the mean over seeds of (feedback - static) is not below
  -max(1, its standard error over the seeds) (the noise the seeds show);
- every file where static finds fewer than 5 at 100 (mean over seeds) finds at least 10 with feedback;
- mammography >= 85 at 100 and >= 176 at 300 (mean over seeds); published active anomaly discovery
  (AAD, Das et al.) is printed beside: mammography ~77 at 100 and ~165 at 300, annthyroid ~64 at 100;
- ledger (100,000 rows, generator seed 7): all 30 ``local`` anomalies within 300 reviews, every seed;
- scale (``--scale-rows``, a ledger stand-in for the 567k-row ``http``): the one-time preparation of the
  re-ranker < 20 s and one retrain < 5 s (the detector is an isolation forest here: its own fit and
  scoring are not part of either figure, and ``auto`` would spend minutes fitting an autoencoder).

Usage: .venv/bin/python benchmarks/bench_feedback.py [--seeds 0 1 2] [--only NAME ...] [--no-ledger]
       [--ledger-rows 100000] [--scale-rows 500000] [--detector auto] [--rerank KEY=VALUE ...] [--json OUT.json]
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

# the shared data sit beside the main checkout (/work/shared) and two levels up from a worktree (/work/wt/NAME)
SHARED = next((p / "shared" for p in (REPO_ROOT.parent, REPO_ROOT.parent.parent) if (p / "shared").is_dir()),
              REPO_ROOT.parent / "shared")
DATA = SHARED / "data" / "benchmarks"
GENERATOR = SHARED / "tools" / "make_journal_entries.py"

ADBENCH = ("ALOI", "annthyroid", "cardio", "Hepatitis", "InternetAds", "Ionosphere", "landsat", "letter",
           "magic.gamma", "mammography", "mnist", "optdigits", "pendigits", "satellite", "satimage-2", "shuttle",
           "Stamps", "thyroid", "vowels", "WBC", "wine", "yeast")
FILES = (*ADBENCH, "kdd_test", "ecg5000_sample")
ABSOLUTE_RULE = {("mammography", 100): 85, ("mammography", 300): 176}
PUBLISHED_AAD = {("mammography", 100): 77, ("mammography", 300): 165, ("annthyroid", 100): 64}
BUDGET, BATCH = 300, 10


def _load(path: Path):
    from engine.io import label_values, label_vector, load

    loaded, schema = load(path)
    if schema.label_column is None:
        raise SystemExit(f"{path}: no label column inferred")
    return loaded.frame, schema, label_vector(loaded.frame, schema), label_values(loaded.frame, schema)


def _simulate(path: Path, detector: str, seed: int, values: bool = False, rerank: dict | None = None) -> dict:
    from engine.simulation import simulate_review

    frame, schema, y, raw = _load(path)
    t0 = time.perf_counter()
    r = simulate_review(frame, schema, y, detector=detector, budget=BUDGET, batch=BATCH, seed=seed,
                        label_values=raw if values else None, params=rerank)
    r["seconds"] = time.perf_counter() - t0
    pad = BUDGET // BATCH - len(r["found_static"])  # files with fewer rows than the budget
    for k in ("found_static", "found_feedback"):
        r[k] = r[k] + r[k][-1:] * pad
    return r


def _rerank_settings(items: list[str]) -> dict | None:
    """``KEY=VALUE`` pairs (JSON values; a bare word is a string) checked against ``RERANK_DEFAULTS``."""
    from engine.feedback.rerank import RERANK_DEFAULTS

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in RERANK_DEFAULTS:
            raise SystemExit(f"--rerank {item!r}: expected KEY=VALUE with KEY one of {sorted(RERANK_DEFAULTS)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if key in ("views", "levels") and isinstance(out[key], list):
            out[key] = tuple(out[key])
    if out:
        print(f"re-ranker settings: {out}")
    return out or None


def _scale(rows: int, tmp: Path, csv: str | None = None) -> dict:
    """Preparation and retrain times of the re-ranker on a ``rows``-row ledger (isolation forest)."""
    from engine.feedback import next_batch, retrain_with_verdicts
    from engine.pipeline import AnomalyModel

    path = Path(csv) if csv else tmp / f"ledger{rows}.csv"
    if not csv:
        subprocess.run([sys.executable, str(GENERATOR), "--rows", str(rows), "--seed", "11", "--out", str(path)],
                       check=True, capture_output=True)
    frame, schema, y, _ = _load(path)
    t0 = time.perf_counter()
    model = AnomalyModel(detector="iforest", seed=0).fit(frame, schema)
    scored = model.score(frame)
    fit_score = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = retrain_with_verdicts(model, frame, schema, {}, scored=scored)
    prepare = time.perf_counter() - t0
    reviewed = np.zeros(len(frame), dtype=bool)
    verdicts: dict[int, str] = {}
    retrains = []
    for r in range(6):
        take = next_batch(result.state, result.scores, reviewed, BATCH)
        if r == 5:  # the last round also confirms anomalies found elsewhere, so the verdict classifier runs
            least = int(result.state.params["classifier_min"])
            take = np.union1d(take, np.flatnonzero(y & ~reviewed)[:least])
        reviewed[take] = True
        verdicts.update({int(i): "anomaly" if y[i] else "normal" for i in take})
        t0 = time.perf_counter()
        result = retrain_with_verdicts(model, frame, schema, verdicts, state=result.state)
        retrains.append(time.perf_counter() - t0)
    return {"rows": len(frame), "fit_score_seconds": fit_score, "prepare_seconds": prepare,
            "retrain_seconds_max": max(retrains), "retrain_seconds_mean": float(np.mean(retrains)),
            "views": result.state.view_names, "retrain_seconds_with_classifier": retrains[-1]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="*", help="file names to run (default: all; 'ledger', 'scale' included)")
    ap.add_argument("--no-ledger", action="store_true")
    ap.add_argument("--ledger-rows", type=int, default=100_000)
    ap.add_argument("--scale-rows", type=int, default=500_000, help="0 to skip the scale test")
    ap.add_argument("--scale-csv", help="a ledger made before with the generator (--rows 500000), to skip making it")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--rerank", action="append", default=[], metavar="KEY=VALUE",
                    help="a re-ranker setting other than its default (RERANK_DEFAULTS), e.g. explore_until=1 or "
                         "'views=[\"iforest\",\"ecod\"]'; JSON values, repeatable")
    args = ap.parse_args(argv)
    wanted = lambda name: not args.only or name in args.only  # noqa: E731
    rerank = _rerank_settings(args.rerank)

    print(f"detector {args.detector}, budget {BUDGET}, batch {BATCH}, seeds {args.seeds}; static = the same "
          "detector's ranking without feedback (peer, same run); per seed, found at 100 | at 300")
    header = (f"{'file':<15}{'rows':>7}{'anom':>6}  {'static@100':>14} {'feedback@100':>14}  {'static@300':>14} "
              f"{'feedback@300':>14} {'worst':>6} {'retrain s':>9} {'prep s':>7}  notes")
    print(header)
    print("-" * len(header))
    results: dict[str, list[dict]] = {}
    fails: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(name, DATA / f"{name}.csv") for name in FILES if wanted(name)]
        if not args.no_ledger and wanted("ledger"):
            path = Path(tmp) / "ledger.csv"
            subprocess.run([sys.executable, str(GENERATOR), "--rows", str(args.ledger_rows), "--seed", "7",
                            "--out", str(path)], check=True, capture_output=True)
            jobs.append(("ledger", path))
        for name, path in jobs:
            if not path.exists():
                print(f"{name:<15} missing {path}")
                continue
            runs = [_simulate(path, args.detector, seed, values=name == "ledger", rerank=rerank)
                    for seed in args.seeds]
            results[name] = runs
            s = np.array([r["found_static"] for r in runs], dtype=float)
            f = np.array([r["found_feedback"] for r in runs], dtype=float)
            diff = f - s
            noise = np.maximum(1.0, diff.std(axis=0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else 1.0)
            worst = float((diff.mean(axis=0) + noise).min())
            notes = []
            if worst < 0:
                notes.append("FAIL below static")
                fails.append(f"{name} below static")
            if s[:, 9].mean() < 5:
                ok = f[:, 9].mean() >= 10
                notes.append(f"static<5: {'ok' if ok else 'FAIL'} >=10")
                if not ok:
                    fails.append(f"{name} low-static")
            for budget in (100, 300):
                k = budget // BATCH - 1
                if (name, budget) in ABSOLUTE_RULE:
                    need = ABSOLUTE_RULE[(name, budget)]
                    ok = f[:, k].mean() >= need
                    notes.append(f"@{budget} {'ok' if ok else 'FAIL'} >={need}")
                    if not ok:
                        fails.append(f"{name}@{budget}")
                if (name, budget) in PUBLISHED_AAD:
                    notes.append(f"(AAD published @{budget}: ~{PUBLISHED_AAD[(name, budget)]})")
            if name == "ledger":
                local = [r["by_value"].get("local", {"count": 0, "found_feedback": [0]}) for r in runs]
                ok = all(d["count"] > 0 and d["found_feedback"][-1] >= d["count"] for d in local)
                notes.append(f"local found @300: {[d['found_feedback'][-1] for d in local]} of "
                             f"{local[0]['count']} {'ok' if ok else 'FAIL'}")
                if not ok:
                    fails.append("ledger local")
            cell = lambda a, k: "/".join(str(int(v)) for v in a[:, k])  # noqa: E731
            retrain = max(r["retrain_seconds_max"] for r in runs)
            prep = max(r["prepare_seconds"] for r in runs)
            print(f"{name:<15}{runs[0]['rows']:>7}{runs[0]['anomalies']:>6}  {cell(s, 9):>14} {cell(f, 9):>14}  "
                  f"{cell(s, 29):>14} {cell(f, 29):>14} {worst:>6.1f} {retrain:>9.2f} {prep:>7.1f}  "
                  + " ".join(notes), flush=True)
        tot_s = sum(sum(r["found_static"][9] for r in runs) for runs in results.values())
        tot_f = sum(sum(r["found_feedback"][9] for r in runs) for runs in results.values())
        ratio = tot_f / max(tot_s, 1)
        if not args.only and ratio < 1.6:
            fails.append(f"total ratio {ratio:.2f} < 1.6")
        print(f"\ntotal found at 100 over {len(results)} files x {len(args.seeds)} seeds: static {tot_s}, "
              f"feedback {tot_f}, ratio {ratio:.2f} (need >= 1.6)")
        scale = None
        if args.scale_rows and (not args.only or "scale" in args.only):
            scale = _scale(args.scale_rows, Path(tmp), args.scale_csv)
            ok = scale["prepare_seconds"] < 20 and scale["retrain_seconds_max"] < 5
            if not ok:
                fails.append("scale")
            print(f"scale: {scale['rows']} ledger rows, preparation {scale['prepare_seconds']:.1f} s (need < 20), "
                  f"retrain max {scale['retrain_seconds_max']:.2f} s / mean {scale['retrain_seconds_mean']:.2f} s "
                  f"(need < 5; with the verdict classifier {scale['retrain_seconds_with_classifier']:.2f} s); "
                  f"views {scale['views']}; detector fit+score {scale['fit_score_seconds']:.1f} s "
                  f"{'ok' if ok else 'FAIL'}")
    print("FAIL: " + "; ".join(fails) if fails else "all checks pass")
    if args.json:
        Path(args.json).write_text(json.dumps({"files": results, "scale": scale, "fails": fails}, default=str))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
