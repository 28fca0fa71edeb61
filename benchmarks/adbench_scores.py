"""Score vectors of peers (PyOD) and of our detectors on the ADBench files, cached per file, seed and
protocol, so combination rules and the quality benchmark compare the same fits without refitting.

    nice -n 10 .venv/bin/python benchmarks/adbench_scores.py [--files a,b] [--seeds 0,1,2]
        [--protocols all,ref] [--methods pyod:IForest,ours:knn@n_neighbors=5;scaling=minmax,...] [--cache DIR]

Protocols: ``all`` fits on every row of the file and scores it (labels hidden); ``ref`` fits on a
random half of the normal rows (drawn with the seed) and scores the other half and every anomaly.
Peers are PyOD models with their defaults on the file's numeric columns min-max scaled on the rows
they are fitted on (ADBench's preparation); ``all`` scores them by ``decision_scores_`` (kNN and
LOF leave each row out of its own neighbours). Ours run on the engine's encoded features (the
``Preprocessor`` fitted on the same rows); the autoencoder trims as ``AnomalyModel`` does there.
Each cache file ``{file}.{protocol}.s{seed}.npz`` holds ``y`` and one array per method (score,
higher = more anomalous; ours are named with every parameter that differs from an earlier default, e.g.
``ours:knn@n_neighbors=5;scaling=minmax``, so a changed default does not change what a key means) plus ``t:{method}`` seconds (fit and score) and, for ours under ``ref``,
``train:{method}`` (the fitted rows' scores, which calibrate an ensemble's members).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("ANOMALY_DESK_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data" / "benchmarks"
DEFAULT_CACHE = REPO.parent / "cache" / "detect"
FILES = ("ALOI", "Hepatitis", "InternetAds", "Ionosphere", "Stamps", "WBC", "annthyroid", "cardio", "landsat",
         "letter", "magic.gamma", "mammography", "mnist", "optdigits", "pendigits", "satellite", "satimage-2",
         "shuttle", "thyroid", "vowels", "wine", "yeast")
PEERS = ("IForest", "KNN", "LOF", "ECOD", "COPOD", "PCA", "OCSVM", "AutoEncoder")
OCSVM_MAX_ROWS = 10000  # "where it fits": PyOD's OCSVM is quadratic in the rows it is fitted on
OURS = ("iforest", "ecod", "pca", "autoencoder", "knn@n_neighbors=20", "knn@n_neighbors=5;scaling=minmax",
        "knn@n_neighbors=20;scaling=minmax", "lof@n_neighbors=20;scaling=minmax")
#: fits that do not depend on the seed (ours kNN/LOF draw their reference rows with it on large files)
DETERMINISTIC = {"KNN", "LOF", "ECOD", "COPOD", "PCA", "OCSVM", "ecod", "pca"}


def split(y: np.ndarray, protocol: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to fit on, rows to score)."""
    every = np.arange(y.size)
    if protocol == "all":
        return every, every
    normal = np.flatnonzero(~y)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(normal)
    half = perm.size // 2
    train = np.sort(perm[:half])
    test = np.sort(np.concatenate([perm[half:], np.flatnonzero(y)]))
    return train, test


def load(name: str):
    from engine.evaluation import load_labelled

    loaded, schema, anomalous, _ = load_labelled(DATA / f"{name}.csv", "label")
    return loaded.frame, schema, np.asarray(anomalous, dtype=bool)


def pyod_model(name: str, seed: int):
    from pyod.models import auto_encoder, copod, ecod, iforest, knn, lof, ocsvm, pca

    return {"IForest": lambda: iforest.IForest(random_state=seed),
            "KNN": lambda: knn.KNN(), "LOF": lambda: lof.LOF(), "ECOD": lambda: ecod.ECOD(),
            "COPOD": lambda: copod.COPOD(), "PCA": lambda: pca.PCA(random_state=seed),
            "OCSVM": lambda: ocsvm.OCSVM(),
            "AutoEncoder": lambda: auto_encoder.AutoEncoder(random_state=seed, verbose=0)}[name]()


def peer_scores(name: str, x: np.ndarray, train: np.ndarray, test: np.ndarray, protocol: str, seed: int):
    from sklearn.preprocessing import MinMaxScaler

    if name == "OCSVM" and train.size > OCSVM_MAX_ROWS:
        return None
    scaler = MinMaxScaler().fit(x[train])
    xt, xs = scaler.transform(x[train]), np.clip(scaler.transform(x[test]), -1e6, 1e6)
    if name == "AutoEncoder":
        import torch

        torch.manual_seed(seed)
    model = pyod_model(name, seed).fit(xt)
    s = model.decision_scores_ if protocol == "all" else model.decision_function(xs)
    return np.asarray(s, dtype=np.float64)


def our_scores(name: str, frame, schema, train: np.ndarray, test: np.ndarray, protocol: str, seed: int):
    from engine.detectors import make_detector
    from engine.features import Preprocessor
    from engine.pipeline import SELF_TRAINED_TRIM

    pre = Preprocessor().fit(frame.iloc[train], schema)
    fm_train = pre.transform(frame.iloc[train])
    fm_test = fm_train if protocol == "all" else pre.transform(frame.iloc[test])
    name, _, extra = name.partition("@")  # e.g. knn@n_neighbors=20
    params = {"seed": seed, "device": "cpu"}
    for item in filter(None, extra.split(";")):
        key, value = item.split("=")
        params[key] = int(value) if value.isdigit() else float(value) if value.replace(".", "", 1).isdigit() \
            else value
    if name == "autoencoder" and protocol == "all" and not fm_train.cardinalities:
        params["trim"] = SELF_TRAINED_TRIM
    det = make_detector(name, **params).fit(fm_train)
    scored = np.asarray(det.score_samples(fm_test), dtype=np.float64)
    if protocol == "all":
        return scored
    return scored, np.asarray(det.score_samples(fm_train), dtype=np.float64)


def cache_path(cache: Path, name: str, protocol: str, seed: int) -> Path:
    return cache / f"{name}.{protocol}.s{seed}.npz"


def read(cache: Path, name: str, protocol: str, seed: int) -> dict[str, np.ndarray]:
    path = cache_path(cache, name, protocol, seed)
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write(cache: Path, name: str, protocol: str, seed: int, data: dict[str, np.ndarray]) -> None:
    path = cache_path(cache, name, protocol, seed)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)


def fill(cache: Path, name: str, protocol: str, seed: int, methods: list[str], quiet: bool = False,
         seeds_done: dict | None = None) -> dict[str, np.ndarray]:
    """Compute the methods missing from the cache for one file, protocol and seed; returns the cache."""
    data = read(cache, name, protocol, seed)
    missing = [m for m in methods if m not in data and f"none:{m}" not in data]
    if not missing:
        return data
    frame, schema, y = load(name)
    train, test = split(y, protocol, seed)
    data["y"] = y[test].astype(np.int8)
    x = None
    for m in missing:
        kind, method = m.split(":", 1)
        if protocol == "all" and seed != 0 and method.partition("@")[0] in DETERMINISTIC:
            first = read(cache, name, protocol, 0)
            if m in first:  # the same fit for every seed
                data[m], data[f"t:{m}"] = first[m], first[f"t:{m}"]
                write(cache, name, protocol, seed, data)
                continue
        t = time.perf_counter()
        if kind == "pyod":
            if x is None:
                x = frame[[c for c in schema.feature_columns]].to_numpy(dtype=np.float64)
                x = np.nan_to_num(x)
            s = peer_scores(method, x, train, test, protocol, seed)
        else:
            s = our_scores(method, frame, schema, train, test, protocol, seed)
        took = time.perf_counter() - t
        if isinstance(s, tuple):  # ours on a reference file: the training rows' scores calibrate members
            s, data[f"train:{m}"] = s
        if s is None:
            data[f"none:{m}"] = np.zeros(0)
        else:
            data[m], data[f"t:{m}"] = s, np.float64(took)
        write(cache, name, protocol, seed, data)
        if not quiet:
            print(f"  {name} {protocol} s{seed} {m}: {took:.1f}s", flush=True)
    return data


def default_methods() -> list[str]:
    return [f"pyod:{p}" for p in PEERS] + [f"ours:{o}" for o in OURS]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", default=",".join(FILES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--protocols", default="all,ref")
    ap.add_argument("--methods", default=",".join(default_methods()))
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    for protocol in args.protocols.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name in args.files.split(","):
                fill(cache, name, protocol, seed, methods)
    return 0


if __name__ == "__main__":
    sys.exit(main())
