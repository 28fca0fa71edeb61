"""Streamed scoring (``python main.py score``) per detector beside the disk: pandas reading and writing
the same file, measured in the same run, on the CPU and, where a GPU is present, on CUDA.

Builds a journal-entry ledger of ``--rows`` rows (default 300,000, the contract check's size) with the
shared generator (``--base-rows`` generated, copies with new document numbers fill the rest), trains each
detector on its first ``--train-rows`` rows, then times, each in its own process:
  - the reference: ``pd.read_csv`` of the ledger and ``to_csv`` of the frame (what the disk and the
    parser cost at the least);
  - ``main.py score`` on a 100-row file (start-up, imports, model loading) and on the ledger; the
    difference is the scoring work.
Prints per detector and device: rows/s of the work, ratio to the reference (the check's goal is <= 6,
aim 3), the whole command's seconds and peak memory (``ru_maxrss``).

Usage: nice .venv/bin/python benchmarks/bench_score_streaming.py [--rows 300000]
       [--detectors auto,ecod,iforest,autoencoder] [--devices cpu,cuda] [--epochs N]
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

REFERENCE = r"""
import sys, time
import pandas as pd
t = time.perf_counter(); frame = pd.read_csv(sys.argv[1]); frame.to_csv(sys.argv[2], index=False)
print(time.perf_counter() - t)
"""


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS in MB, exit status, stdout) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"  command failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}",
              file=sys.stderr)
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0  # largest child so far, MiB
    return seconds, peak, proc.returncode, out.decode(errors="replace")


def build_ledger(folder: Path, rows: int, base_rows: int, seed: int) -> Path:
    import pandas as pd

    base_rows = min(base_rows, rows)
    base_path = folder / "base.csv"
    subprocess.run([sys.executable, str(GENERATOR), "--rows", str(base_rows), "--seed", str(seed),
                    "--out", str(base_path)], check=True, stdout=subprocess.DEVNULL)
    if base_rows == rows:
        return base_path
    base = pd.read_csv(base_path, dtype=str, keep_default_na=False)
    belnr = base["BELNR"].astype("int64").to_numpy()
    span = int(belnr.max() - belnr.min() + 1)
    out = folder / "ledger.csv"
    written, copy = 0, 0
    with open(out, "w", encoding="utf-8", newline="") as handle:
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
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--base-rows", type=int, default=300_000, help="rows the generator makes; copies fill the rest")
    ap.add_argument("--train-rows", type=int, default=50_000)
    ap.add_argument("--detectors", default="auto,ecod,iforest,autoencoder")
    ap.add_argument("--devices", default="cpu,cuda", help="cuda is skipped where torch sees no GPU")
    ap.add_argument("--epochs", type=int, help="training epochs of the deep detectors (default: theirs)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files (default: a temporary folder)")
    args = ap.parse_args()

    import torch

    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_score_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        ledger = build_ledger(folder, args.rows, args.base_rows, args.seed)
        train = head_file(ledger, folder / "train.csv", args.train_rows)
        small = head_file(ledger, folder / "small.csv", 100)
        print(f"ledger: {args.rows:,} rows, {ledger.stat().st_size / 2**20:,.0f} MB; cpu cores {os.cpu_count()}; "
              f"torch {torch.__version__}{'; ' + torch.cuda.get_device_name(0) if 'cuda' in devices else ''}")
        _, _, _, out = run_measured([sys.executable, "-c", REFERENCE, str(ledger), str(folder / "io.csv")])
        reference = float(out.strip().splitlines()[-1])
        print(f"reference, pandas read_csv + to_csv: {reference:.2f} s ({args.rows / reference:,.0f} rows/s)\n")
        print(f"{'detector':<13}{'device':<7}{'rows/s':>10}{'x pandas':>10}{'command s':>11}{'peak MB':>9}")
        for detector in args.detectors.split(","):
            for device in devices:
                model = folder / f"model_{detector}_{device}"
                env = dict(os.environ)
                if device == "cpu":
                    env["CUDA_VISIBLE_DEVICES"] = ""
                cmd = [sys.executable, "main.py", "train", str(train), "--out", str(model), "--detector", detector,
                       "--label-column", "label", "--device", device]
                if args.epochs:
                    cmd += ["--epochs", str(args.epochs)]
                if run_measured(cmd, env)[2] != 0:
                    continue

                def score(src: Path, _model=model, _env=env) -> tuple[float, float, int, str]:
                    return run_measured([sys.executable, "main.py", "score", str(src), "--model", str(_model),
                                         "--out", str(folder / "scores.csv"), "--quiet"], _env)

                start_up, _, _, _ = score(small)
                seconds, peak, rc, _ = score(ledger)
                if rc != 0:
                    continue
                work = max(seconds - start_up, 1e-3)
                print(f"{detector:<13}{device:<7}{args.rows / work:>10,.0f}{work / reference:>10.1f}"
                      f"{seconds:>11.1f}{peak:>9,.0f}", flush=True)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
