"""Load time of a full-size ledger: our load (read + checks + schema inference) against plain
``pandas.read_csv`` (default C engine, no inference), measured in the same run.

    .venv/bin/python benchmarks/bench_read_csv.py [--rows 533009] [--repeats 3]

The ledger is generated with ../shared/tools/make_journal_entries.py into a temporary folder.
Target (issue 2): our load under 10 s for 533,009 rows on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
GENERATOR = Path(os.environ.get("ANOMALY_DESK_SHARED", REPO_ROOT.parent / "shared")) / "tools" / "make_journal_entries.py"

import pandas as pd  # noqa: E402

from engine import io as engine_io  # noqa: E402

EXPECTED = {"BELNR": "identifier", "WAERS": "categorical", "BUKRS": "categorical", "KTOSL": "categorical",
            "PRCTR": "categorical", "BSCHL": "categorical", "HKONT": "categorical", "DMBTR": "numeric",
            "WRBTR": "numeric", "label": "label"}


def _best(fn, repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=533_009)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--csv", help="use this file instead of generating a ledger")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.csv:
            path = Path(args.csv)
        else:
            path = Path(tmp) / f"ledger_{args.rows}.csv"
            start = time.perf_counter()
            subprocess.run([sys.executable, str(GENERATOR), "--rows", str(args.rows), "--out", str(path)],
                           check=True, capture_output=True)
            print(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) in "
                  f"{time.perf_counter() - start:.1f} s")
        pd_best, pd_median, frame = _best(lambda: pd.read_csv(path), args.repeats)
        read_best, read_median, loaded = _best(lambda: engine_io.read_csv(path), args.repeats)
        ours_best, ours_median, (loaded, schema) = _best(lambda: engine_io.load(path), args.repeats)
        print(f"pandas.read_csv          : best {pd_best:6.2f} s, median {pd_median:6.2f} s "
              f"({len(frame):,} rows x {frame.shape[1]} columns)")
        print(f"engine.io.read_csv     : best {read_best:6.2f} s, median {read_median:6.2f} s")
        print(f"engine.io.load (+infer): best {ours_best:6.2f} s, median {ours_median:6.2f} s "
              f"({len(loaded.frame):,} rows, label '{schema.label_column}', normal '{schema.normal_value}')")
        print(f"ratio load / pandas.read_csv: {ours_best / pd_best:.2f}x (best), {ours_median / pd_median:.2f}x (median)")
        print(f"target: load under 10 s -> {'met' if ours_median < 10 else 'NOT met'}")
        if not args.csv:
            roles = {c.name: c.role.value for c in schema.columns}
            wrong = {k: (roles.get(k), v) for k, v in EXPECTED.items() if roles.get(k) != v}
            print("roles: as expected" if not wrong else f"roles: UNEXPECTED {wrong}")
            return 1 if wrong else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
