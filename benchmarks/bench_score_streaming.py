"""Chunked scoring of a large ledger through ``python main.py score`` against the peer: plain
``pandas.read_csv`` + ``AnomalyModel.score`` in one go, measured in the same run.

Builds a journal-entry ledger of ``--rows`` rows (default 5,000,000) in a temporary folder: the
shared generator makes ``--base-rows`` rows and copies of them with new document numbers (BELNR)
fill the rest, since generating millions of rows directly is slow. Trains a model on a sample,
then scores:
  1. the whole ledger through the ``score`` command (streamed in chunks), in its own process;
  2. a ``--peer-rows`` file (the first rows of the ledger; the whole ledger when it is at most that
     size) both through ``score`` and through the peer, each in its own process.
Prints rows/s and peak memory (``ru_maxrss`` of each scoring process, from ``os.wait4``); the
streamed run's peak must stay under 2 GB.

Usage: .venv/bin/python benchmarks/bench_score_streaming.py [--rows 5000000] [--detector ecod]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GENERATOR = Path(os.environ.get("ANOMALY_DESK_SHARED", REPO.parent / "shared")) / "tools" / "make_journal_entries.py"
LIMIT_MB = 2048

PEER = r"""
import sys, time
import pandas as pd
from engine.pipeline import AnomalyModel
src, model_dir, out = sys.argv[1:4]
model = AnomalyModel.load(model_dir)
frame = pd.read_csv(src)
result = model.score(frame)
frame.insert(0, "severity", result.severity)
frame.insert(0, "score", result.scores)
frame.to_csv(out, index=False)
"""


def run_measured(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit status) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        print(f"  command failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}", file=sys.stderr)
    return seconds, usage.ru_maxrss / 1024.0, proc.returncode  # ru_maxrss is in KiB on Linux


def build_ledger(folder: Path, rows: int, base_rows: int, seed: int) -> Path:
    import pandas as pd

    base_rows = min(base_rows, rows)
    base_path = folder / "base.csv"
    subprocess.run([sys.executable, str(GENERATOR), "--rows", str(base_rows), "--seed", str(seed),
                    "--out", str(base_path)], check=True, stdout=subprocess.DEVNULL)
    base = pd.read_csv(base_path, dtype=str, keep_default_na=False)  # text as generated, copied verbatim
    belnr = base["BELNR"].astype("int64").to_numpy()
    span = int(belnr.max() - belnr.min() + 1)
    out = folder / "ledger.csv"
    written = 0
    with open(out, "w", encoding="utf-8", newline="") as handle:
        copy = 0
        while written < rows:
            part = base.iloc[: rows - written].copy()
            part["BELNR"] = (belnr[: len(part)] + copy * span).astype(str)
            part.to_csv(handle, header=copy == 0, index=False)
            written += len(part)
            copy += 1
    return out


def head_file(src: Path, dst: Path, rows: int) -> Path:
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for i, line in enumerate(fin):
            if i > rows:
                break
            fout.write(line)
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--base-rows", type=int, default=200_000, help="rows the generator makes; copies fill the rest")
    ap.add_argument("--train-rows", type=int, default=50_000)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--peer-rows", type=int, default=1_000_000,
                    help="size of the file both methods score (the peer holds it all in memory)")
    ap.add_argument("--detector", default="ecod")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files (default: a temporary folder)")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd

    from engine.io import load
    from engine.pipeline import AnomalyModel

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_score_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        ledger = build_ledger(folder, args.rows, args.base_rows, args.seed)
        size_mb = ledger.stat().st_size / 2**20
        print(f"ledger: {args.rows:,} rows, {size_mb:,.0f} MB, built in {time.perf_counter() - t:.0f} s "
              f"({args.base_rows:,} generated, the rest copies with new BELNR)")

        t = time.perf_counter()
        loaded, schema = load(folder / "base.csv")
        sample = loaded.frame.sample(min(args.train_rows, len(loaded.frame)), random_state=args.seed)
        model = AnomalyModel(args.detector, seed=args.seed).fit(sample, schema)
        model_dir = model.save(folder / "model")
        print(f"model: {args.detector} trained on {len(sample):,} rows in {time.perf_counter() - t:.1f} s")

        def score_cmd(src: Path, out: Path) -> list[str]:
            return [sys.executable, "main.py", "score", str(src), "--model", str(model_dir), "--out", str(out),
                    "--chunk-rows", str(args.chunk_rows), "--quiet"]

        results = []
        seconds, peak, rc = run_measured(score_cmd(ledger, folder / "scores_all.csv"))
        results.append(("score (streamed)", args.rows, seconds, peak, rc))
        print(f"  streamed {args.rows:,} rows: {seconds:.1f} s, peak {peak:,.0f} MB", flush=True)

        if args.peer_rows >= args.rows:
            compare, n_compare = ledger, args.rows
        else:
            compare, n_compare = head_file(ledger, folder / "compare.csv", args.peer_rows), args.peer_rows
        if compare != ledger:
            seconds, peak, rc = run_measured(score_cmd(compare, folder / "scores_compare.csv"))
            results.append(("score (streamed)", n_compare, seconds, peak, rc))
            print(f"  streamed {n_compare:,} rows: {seconds:.1f} s, peak {peak:,.0f} MB", flush=True)
        seconds, peak, rc = run_measured([sys.executable, "-c", PEER, str(compare), str(model_dir),
                                          str(folder / "peer.csv")])
        results.append(("peer: read_csv + score", n_compare, seconds, peak, rc))
        print(f"  peer {n_compare:,} rows: {seconds:.1f} s, peak {peak:,.0f} MB", flush=True)

        print(f"\n{'method':<26}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}")
        for name, rows, seconds, peak, rc in results:
            flag = "" if rc == 0 else f"  (failed, exit {rc})"
            print(f"{name:<26}{rows:>12,}{seconds:>10.1f}{rows / seconds:>12,.0f}{peak:>10,.0f}{flag}")
        streamed_cmp = [r for r in results if r[0].startswith("score") and r[1] == n_compare][0]
        peer = results[-1]
        if streamed_cmp[4] == 0 and peer[4] == 0:
            ours = pd.read_csv(folder / ("scores_compare.csv" if compare != ledger else "scores_all.csv"),
                               usecols=["score"])["score"].to_numpy()
            theirs = pd.read_csv(folder / "peer.csv", usecols=["score"])["score"].to_numpy()
            same = len(ours) == len(theirs) and np.allclose(ours, theirs, rtol=1e-9, atol=1e-12)
            print(f"\non {n_compare:,} rows: streamed/peer speed {(peer[2] / streamed_cmp[2]):.2f}x, "
                  f"memory {streamed_cmp[3] / peer[3]:.2f}x of the peer's; same scores: {same}")
        full = results[0]
        verdict = "PASS" if full[4] == 0 and full[3] < LIMIT_MB else "FAIL"
        print(f"streamed peak memory on {full[1]:,} rows: {full[3]:,.0f} MB (limit {LIMIT_MB} MB): {verdict}")
        return 0 if verdict == "PASS" else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
