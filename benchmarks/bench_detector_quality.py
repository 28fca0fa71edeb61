"""Detector quality: AUCROC per dataset x detector, next to the published anchors, with pass/fail.

    .venv/bin/python benchmarks/bench_detector_quality.py [--seeds 0,1] [--datasets a,b] [--json OUT]

Datasets: the six ADBench files (fit on the file, labels hidden; averaged over ``--seeds`` as
ADBench averages over seeds), KDD and ECG5000 (fit on the normal training file, score the test
file), and the 100,000-row journal entries (make_journal_entries.py --rows 100000 --seed 7; with
``global``/``local`` counts in the top 1%). Each ``auto`` fit also yields its members' scores
(iforest, ecod, autoencoder on numeric tables; autoencoder, ecod on categorical-heavy ones: the same
detectors, same defaults and seed as when run alone), so they are reported from the same run;
detectors that are not members (PCA, OCSVM) are fitted on their own. (The autoencoder alone and as
a member are the same fit: both trim on a file fitted on itself, see engine.pipeline.)

Every dataset but the journal entries is measured for every seed in ``--seeds`` and reported as the
mean (with the spread over seeds for KDD and ECG5000, whose autoencoder varies with the seed); the
100k-row journal entries use the first seed.

Targets (issue 3): journal entries auto AUCROC >= 0.95 with >= 45/70 global and >= 27/30 local in
the top 1%; ADBench mean auto >= 93.4 and on no file more than 3 points below the published
IForest; KDD autoencoder >= 0.97; ECG5000 autoencoder >= 0.99.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.evaluation import evaluate  # noqa: E402

SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "benchmarks"
ANCHORS = SHARED / "anchors" / "adbench_TableD4_unsup_aucroc.csv"
GENERATOR = SHARED / "tools" / "make_journal_entries.py"
ADBENCH = ("annthyroid", "cardio", "mammography", "pendigits", "shuttle", "thyroid")
COLUMNS = ("auto", "autoencoder", "iforest", "ecod", "pca", "ocsvm")
ANCHOR_COLUMNS = {"iforest": "IForest", "ecod": "ECOD", "pca": "PCA", "ocsvm": "OCSVM"}
# published figures for the non-ADBench files (issue 3 / FIELD-NOTES), AUCROC x100
OTHER_ANCHORS = {
    "kdd": "autoencoder 96.3, BiGAN 97.2, OCSVM 95.7, PCA 77.1 (Cloudera FF12)",
    "ecg5000": "interactive autoencoder ~96, PyOD AutoEncoder 98.7, IForest/PCA 92.7",
    "journal_entries": "IForest 42, ECOD 79, PyOD AutoEncoder 81, one-hot AE + CE ~91",
}


def read_anchors() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with open(ANCHORS, newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["dataset"]] = {k: float(v) for k, v in row.items() if k != "dataset" and v}
    return out


def journal_entries(cache: Path) -> Path:
    path = cache / "je100k_seed7.csv"
    if not path.exists():
        subprocess.run([sys.executable, str(GENERATOR), "--rows", "100000", "--seed", "7", "--out", str(path)],
                       check=True)
    return path


def runs(name: str, cache: Path):
    """(csv, train_csv, normal_value) for a dataset name."""
    if name in ADBENCH:
        return DATA / f"{name}.csv", None, None
    if name == "kdd":
        return DATA / "kdd_test.csv", DATA / "kdd_train_normal.csv", None
    if name == "ecg5000":
        return DATA / "ecg5000_test.csv", DATA / "ecg5000_train_normal.csv", None
    if name == "journal_entries":
        return journal_entries(cache), None, "regular"
    raise SystemExit(f"unknown dataset {name}")


def measure(name: str, seed: int, cache: Path, detectors: tuple[str, ...]) -> dict:
    csv_path, train, normal = runs(name, cache)
    row: dict = {"dataset": name, "seed": seed, "aucroc": {}, "by_value": {}, "seconds": {}}
    if "auto" in detectors:
        t = time.perf_counter()
        out = evaluate(csv_path, "label", normal_value=normal, train_csv=train, detector="auto", seed=seed)
        row["seconds"]["auto"] = time.perf_counter() - t
        row["rows"] = out["rows"]
        row["aucroc"]["auto"] = out["aucroc"]
        row["by_value"]["auto"] = out["by_value"]
        row["weights"] = {m: v.get("weight") for m, v in out.get("members", {}).items()}
        for member, v in out.get("members", {}).items():
            row["aucroc"][member] = v["aucroc"]
            if "by_value" in v:
                row["by_value"][member] = v["by_value"]
    for det in detectors:
        if det == "auto" or det in row["aucroc"]:
            continue
        t = time.perf_counter()
        out = evaluate(csv_path, "label", normal_value=normal, train_csv=train, detector=det, seed=seed)
        row["seconds"][det] = time.perf_counter() - t
        row["aucroc"][det] = out["aucroc"]
        row["by_value"][det] = out["by_value"]
        row.setdefault("rows", out["rows"])
    return row


def atypical_normal_row(name: str, seeds: list[int], cache: Path) -> dict:
    """The normal test row farthest from every normal training row (Euclidean distance to the nearest),
    where the autoencoder ranks it per seed, the AUCROC without it, and the ceiling it sets: a normal row
    ranked above every anomaly costs n_anomalies of the n_anomalies * n_normal pairs, so no ranking that
    puts it first can score above 1 - 1 / n_normal. On ECG5000 that row is a beat labelled normal whose
    shape is unlike any normal beat, and it decides whether 0.99 is reachable at all."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    from engine.evaluation import load_labelled, load_training_frame
    from engine.pipeline import AnomalyModel

    csv_path, train, _ = runs(name, cache)
    loaded, schema, anomalous, _ = load_labelled(csv_path, "label")
    train_frame = load_training_frame(train, schema)
    columns = [c for c in schema.feature_columns if np.issubdtype(loaded.frame[c].dtype, np.number)]
    x = loaded.frame[columns].to_numpy(dtype=float)
    t = train_frame[columns].to_numpy(dtype=float)
    nearest = NearestNeighbors(n_neighbors=1).fit(t).kneighbors(x)[0][:, 0]
    normal = np.flatnonzero(~anomalous)
    row = int(normal[np.argmax(nearest[normal])])
    out = {"row": row, "n_rows": len(x), "distance": float(nearest[row]),
           "median_normal_distance": float(np.median(nearest[normal])),
           "median_anomaly_distance": float(np.median(nearest[anomalous])),
           "anomalies_farther": int((nearest[anomalous] > nearest[row]).sum()), "n_anomalies": int(anomalous.sum()),
           "ceiling": 1.0 - 1.0 / normal.size, "rank": [], "anomalies_below": [], "aucroc_without": []}
    keep = np.arange(len(x)) != row
    for seed in seeds:
        model = AnomalyModel(detector="autoencoder", seed=seed)
        model.fit(train_frame, schema, known_good=True)
        scores = model.score(loaded.frame).scores
        out["rank"].append(int((scores > scores[row]).sum()) + 1)
        out["anomalies_below"].append(int((scores[anomalous] < scores[row]).sum()))
        out["aucroc_without"].append(float(roc_auc_score(anomalous[keep], scores[keep])))
    return out


def fmt(x) -> str:
    return "   -  " if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:6.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(ADBENCH + ("kdd", "ecg5000", "journal_entries")))
    ap.add_argument("--seeds", default="0,1", help="seeds (the journal entries use the first)")
    ap.add_argument("--detectors", default=",".join(COLUMNS))
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "anomaly_desk_bench"))
    ap.add_argument("--json", help="also write every figure to this JSON file")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    detectors = tuple(d for d in args.detectors.split(",") if d)
    anchors = read_anchors()
    results = []
    for name in args.datasets.split(","):
        for seed in (seeds[:1] if name == "journal_entries" else seeds):
            row = measure(name, seed, cache, detectors)
            results.append(row)
            print(f"# {name} seed {seed}: " + ", ".join(f"{k} {fmt(v).strip()}" for k, v in row["aucroc"].items())
                  + f"  ({', '.join(f'{k} {v:.0f}s' for k, v in row['seconds'].items())})", flush=True)

    # -- table: mean over seeds ------------------------------------------------------------------
    names = list(dict.fromkeys(r["dataset"] for r in results))
    mean: dict[str, dict[str, float]] = {}
    for name in names:
        rows = [r for r in results if r["dataset"] == name]
        mean[name] = {d: float(np.mean([r["aucroc"][d] for r in rows if d in r["aucroc"]]))
                      for d in COLUMNS if any(d in r["aucroc"] for r in rows)}
    print()
    print("AUCROC x100 (mean over seeds); [published ADBench: IForest / ECOD / PCA / OCSVM]")
    print(f"{'dataset':<16}" + "".join(f"{d:>12}" for d in COLUMNS) + "   published")
    checks = []
    for name in names:
        line = f"{name:<16}" + "".join(f"{fmt(mean[name].get(d)):>12}" for d in COLUMNS)
        if name in anchors:
            a = anchors[name]
            line += "   " + " / ".join(f"{a.get(ANCHOR_COLUMNS[d], float('nan')):.2f}" for d in
                                       ("iforest", "ecod", "pca", "ocsvm"))
            floor = a["IForest"] - 3.0
            if "auto" in mean[name]:
                got = 100 * mean[name]["auto"]
                checks.append((f"{name}: auto >= IForest - 3 = {floor:.2f}", f"{got:.2f}", got >= floor))
        else:
            line += "   " + OTHER_ANCHORS.get(name, "")
        print(line)
    adb = [n for n in names if n in ADBENCH and "auto" in mean[n]]
    if adb:
        ours = float(np.mean([100 * mean[n]["auto"] for n in adb if "auto" in mean[n]]))
        ref = float(np.mean([anchors[n]["IForest"] for n in adb]))
        ifo = float(np.mean([100 * mean[n].get("iforest", np.nan) for n in adb]))
        print(f"{'ADBench mean':<16}{ours:12.2f}   (our iforest {ifo:.2f}; published IForest {ref:.2f}; "
              f"auto / published IForest = {ours / ref:.3f})")
        if len(adb) == len(ADBENCH):
            checks.append(("ADBench mean auto >= 93.4", f"{ours:.2f}", ours >= 93.4))
    for name, det, target in (("kdd", "autoencoder", 0.97), ("ecg5000", "autoencoder", 0.99)):
        if name in mean and det in mean[name]:
            per_seed = [r["aucroc"][det] for r in results if r["dataset"] == name and det in r["aucroc"]]
            spread = f" (seeds: {', '.join(f'{x:.4f}' for x in per_seed)})" if len(per_seed) > 1 else ""
            checks.append((f"{name}: {det} >= {target}", f"{mean[name][det]:.4f}{spread}", mean[name][det] >= target))
    if "ecg5000" in mean and "autoencoder" in mean["ecg5000"]:
        a = atypical_normal_row("ecg5000", seeds, cache)
        print(f"\necg5000: normal test row {a['row']} lies {a['distance']:.1f} from the nearest normal training beat "
              f"(median of the normal test rows {a['median_normal_distance']:.1f}, of the anomalies "
              f"{a['median_anomaly_distance']:.1f}; {a['anomalies_farther']} of the {a['n_anomalies']} anomalies lie "
              f"farther). The autoencoder ranks it {', '.join(map(str, a['rank']))} of {a['n_rows']} (seeds "
              f"{args.seeds}), above {', '.join(map(str, a['anomalies_below']))} of the {a['n_anomalies']} anomalies. "
              f"Any ranking that puts it above every anomaly tops out at AUCROC {a['ceiling']:.4f}. "
              f"Autoencoder AUCROC without that row: "
              f"{', '.join(f'{v:.4f}' for v in a['aucroc_without'])}.")
    je = [r for r in results if r["dataset"] == "journal_entries"]
    if je:
        r = je[0]
        print("\njournal entries, in the top 1% (1,000 rows): global/70, local/30")
        for det, bv in r["by_value"].items():
            g, loc = bv.get("global", {}), bv.get("local", {})
            print(f"  {det:<12} AUCROC {fmt(r['aucroc'].get(det)).strip():>6}   global {g.get('in_top_1pct')}/"
                  f"{g.get('count')}   local {loc.get('in_top_1pct')}/{loc.get('count')}")
        if "auto" in r["aucroc"]:
            bv = r["by_value"]["auto"]
            checks.append(("journal entries: auto AUCROC >= 0.95", f"{r['aucroc']['auto']:.4f}",
                           r["aucroc"]["auto"] >= 0.95))
            checks.append(("journal entries: auto global in top 1% >= 45/70", str(bv["global"]["in_top_1pct"]),
                           bv["global"]["in_top_1pct"] >= 45))
            checks.append(("journal entries: auto local in top 1% >= 27/30", str(bv["local"]["in_top_1pct"]),
                           bv["local"]["in_top_1pct"] >= 27))
    weights = {r["dataset"]: r.get("weights") for r in results if r.get("weights")}
    if weights:
        print("\nauto member weights (agreement, first seed):")
        for name, w in weights.items():
            print(f"  {name:<16} " + ", ".join(f"{k} {v:.2f}" for k, v in w.items() if v is not None))
    print("\ntargets:")
    for what, got, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}: {got}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "mean": mean,
                                               "checks": [list(c) for c in checks]}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
