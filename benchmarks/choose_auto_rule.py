"""Choose ``auto``'s members and combination by leave-one-file-out over the cached ADBench score vectors
(benchmarks/adbench_scores.py), against the PyOD peers of the same cache.

    .venv/bin/python benchmarks/choose_auto_rule.py [--protocol all] [--seeds 0,1,2] [--top 15]

Every rule is (a set of our members, a standardisation, a combination). Standardisation of a member's
scores against the rows it was fitted on: ``z`` = (s - median) / IQR, ``rank`` = the share of fitted rows
scored lower (past the highest, 1 + log1p(excess / IQR)). Combination: mean, median, max, or the mean of
the two largest (top2). Leave one file out: for each file, pick the rule with the best mean AUCROC over
the other 21 files (seed means; also with every point below IForest - 3 counted twice) and score it on
the held-out file; the mean of those held-out figures is what the choice is worth on unseen files.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from adbench_scores import DEFAULT_CACHE, FILES, PEERS, read  # noqa: E402

from engine.detectors import ensemble  # noqa: E402

FAMILIES = {"iforest": ("iforest",), "ecod": ("ecod",), "autoencoder": ("autoencoder",),
            "knn": ("knn@n_neighbors=20", "knn@n_neighbors=5;scaling=minmax", "knn@n_neighbors=20;scaling=minmax"),
            "lof": ("lof@n_neighbors=20;scaling=minmax",)}
COMBINATIONS = ("mean", "median", "max", "top2")
STANDARDISATIONS = ensemble.STANDARDIZATIONS


def auc(y: np.ndarray, s: np.ndarray) -> float:
    r = rankdata(s)
    pos = y.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def standardise(s: np.ndarray, ref: np.ndarray, how: str) -> np.ndarray:
    """A member's scores standardised against the rows it was fitted on, exactly as ``auto`` does."""
    return ensemble.standardise(s, *ensemble.calibration(ref), how)


def combine(z: np.ndarray, how: str) -> np.ndarray:
    if how == "top2":  # the mean of the two most alarmed members
        return np.sort(z, axis=1)[:, -2:].mean(axis=1)
    return {"mean": np.mean, "median": np.median, "max": np.max}[how](z, axis=1)


def rules():
    options = [((),) + tuple((m,) for m in FAMILIES[f]) for f in FAMILIES]
    for pick in itertools.product(*options):
        members = tuple(m for part in pick for m in part)
        if len(members) < 2:
            continue
        for how in STANDARDISATIONS:
            for comb in COMBINATIONS:
                yield members, how, comb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", default="all")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--files", default=",".join(FILES))
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    cache, seeds, files = Path(args.cache), [int(s) for s in args.seeds.split(",")], args.files.split(",")
    data = {(f, s): read(cache, f, args.protocol, s) for f in files for s in seeds}
    all_rules = list(rules())
    table = np.full((len(all_rules), len(files)), np.nan)  # seed-mean AUCROC per rule and file
    peers = {p: np.full(len(files), np.nan) for p in PEERS}
    singles: dict[str, np.ndarray] = {}
    peer_runs: dict[tuple[str, int], list[float]] = {}
    for j, f in enumerate(files):
        per_seed = []
        for s in seeds:
            d = data[(f, s)]
            y = d["y"]
            z = {}
            for how in STANDARDISATIONS:
                for fam in FAMILIES.values():
                    for m in fam:
                        key = f"ours:{m}"
                        ref = d.get(f"train:{key}", d[key])
                        z[(m, how)] = standardise(d[key], ref, how)
                        singles.setdefault(m, np.full((len(files), len(seeds)), np.nan))[j, seeds.index(s)] = \
                            auc(y, d[key])
            per_seed.append([auc(y, combine(np.column_stack([z[(m, how)] for m in members]), comb))
                             for members, how, comb in all_rules])
            for p in PEERS:
                peer_runs.setdefault((p, j), []).extend([auc(y, d[f"pyod:{p}"])] if f"pyod:{p}" in d else [])
        table[:, j] = np.mean(per_seed, axis=0)
        for p in PEERS:
            if peer_runs[(p, j)]:
                peers[p][j] = np.mean(peer_runs[(p, j)])
    peer_mean = {p: float(np.nanmean(v)) for p, v in peers.items() if not np.all(np.isnan(v))}
    best_peer = max(peer_mean, key=peer_mean.get)
    best_per_file = np.nanmax(np.column_stack([v for v in peers.values()]), axis=1)
    iforest = peers["IForest"]

    def name(i):
        members, how, comb = all_rules[i]
        return f"{comb}({how}: {'+'.join(members)})"

    def shortfalls(i):
        return int((100 * (table[i] - iforest) < -3.0).sum())

    means = table.mean(axis=1)
    order = np.argsort(-means)
    print(f"protocol {args.protocol}, seeds {args.seeds}, {len(files)} files, {len(all_rules)} rules")
    print("peers (mean AUCROC x100): " + ", ".join(f"{p} {100 * v:.2f}" for p, v in
                                                    sorted(peer_mean.items(), key=lambda t: -t[1])))
    print(f"best peer {best_peer} {100 * peer_mean[best_peer]:.2f}; best peer per file {100 * best_per_file.mean():.2f}")
    print("our members alone: " + ", ".join(f"{m} {100 * np.nanmean(v):.2f}" for m, v in singles.items()))
    print(f"\ntop {args.top} rules on all files (mean, margin over best peer, files > 3 below IForest):")
    for i in order[: args.top]:
        print(f"  {100 * means[i]:6.2f}  {100 * (means[i] - peer_mean[best_peer]):+5.2f}  {shortfalls(i)}  {name(i)}")
    floor = iforest[None, :] - 0.03
    penalised = table - np.clip(floor - table, 0.0, None)  # a point below IForest - 3 counts twice
    for allowed in (0, 1, 2):
        ok = [i for i in order if shortfalls(i) <= allowed][:3]
        print(f"best with at most {allowed} file(s) > 3 below IForest: "
              + "; ".join(f"{100 * means[i]:.2f} {name(i)}" for i in ok))
    for label, score in (("mean", table), ("mean, shortfall below IForest - 3 counted twice", penalised)):
        held, chosen = [], []
        for j in range(len(files)):
            i = int(np.argmax(np.delete(score, j, axis=1).mean(axis=1)))
            chosen.append(name(i))
            held.append(table[i, j])
        print(f"\nleave one file out, chosen by {label}: held-out mean {100 * np.mean(held):.2f} "
              f"(best peer {best_peer} {100 * peer_mean[best_peer]:.2f}), held-out files > 3 below IForest: "
              f"{int((100 * (np.array(held) - iforest) < -3).sum())}")
        for rule in sorted(set(chosen), key=chosen.count, reverse=True):
            print(f"  chosen in {chosen.count(rule)} of {len(files)} folds: {rule}")
    top = int(np.argmax(penalised.mean(axis=1)))
    print(f"\nper file, {name(top)} against the peers (x100):")
    print(f"{'file':<14}{'rule':>7}" + "".join(f"{p[:8]:>9}" for p in PEERS) + f"{'best':>8}")
    for j, f in enumerate(files):
        print(f"{f:<14}{100 * table[top, j]:7.2f}" + "".join(f"{100 * peers[p][j]:9.2f}" for p in PEERS)
              + f"{100 * best_per_file[j]:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
