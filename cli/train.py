"""``train CSV --out MODEL_DIR``: fit a detector on a CSV and save it as a model bundle."""

from __future__ import annotations

import sys
import time

from engine.detectors import DETECTOR_NAMES
from engine.errors import AnomalyDeskError


def register(sub) -> None:
    p = sub.add_parser("train", help="learn what normal looks like from a CSV and save the model")
    p.add_argument("csv", metavar="FILE", help="CSV or Parquet file of (mostly) normal records")
    p.add_argument("--sample", type=int, metavar="N",
                   help="learn from N rows drawn uniformly while streaming the file (for files larger "
                        "than memory)")
    p.add_argument("--out", required=True, help="model directory to write (replaced atomically)")
    p.add_argument("--detector", default="auto", choices=DETECTOR_NAMES, help="detector (default: auto)")
    p.add_argument("--label-column", help="label column: never used as a feature")
    p.add_argument("--normal-value", help="label value meaning normal (default: the most frequent)")
    p.add_argument("--epochs", type=int, help="training epochs for the deep detectors")
    add_param_option(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same model)")
    p.set_defaults(func=run)


class StderrProgress:
    """Progress lines on stderr, at most one every ``every`` seconds (and always the last)."""

    def __init__(self, every: float = 1.0):
        self.every, self.last = every, 0.0

    def __call__(self, fraction, message="", **metrics) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self.last < self.every:
            return
        self.last = now
        extra = " ".join(f"{k}={_fmt(v)}" for k, v in metrics.items() if isinstance(v, int | float | str))
        print(f"[{100 * float(fraction):5.1f}%] {message} {extra}".rstrip(), file=sys.stderr, flush=True)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise AnomalyDeskError("--device cuda: no CUDA GPU is available on this machine (use auto or cpu)")


def add_param_option(parser) -> None:
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a detector setting, repeatable (e.g. --param learning_rate=3e-3 --param "
                             "hidden_layers=64-16); the names, ranges and defaults are those of the GUI's form")


def detector_params(detector: str, epochs: int | None, assignments: list[str] | None = None) -> dict:
    """``--epochs`` (for the detectors that take it) and the ``--param`` settings, checked against the
    detector's declared parameters (engine.detectors.params)."""
    from engine.detectors import accepted_params
    from engine.detectors.params import parse_assignments

    params = {}
    if epochs is not None:
        if epochs < 1:
            raise AnomalyDeskError("--epochs must be at least 1")
        params = accepted_params(detector, {"epochs": int(epochs)})
    params.update(parse_assignments(detector, assignments))
    return params


def run(args) -> int:
    from engine.io import validate_for_training
    from engine.pipeline import AnomalyModel
    from engine.schema import SchemaOverrides

    check_device(args.device)
    frame, schema, path = _read(args)
    if args.label_column is not None:
        if args.label_column not in frame.columns:
            from engine.errors import DataError

            raise DataError(f"no label column '{args.label_column}' in the data", file=path,
                            column=args.label_column)
        schema = SchemaOverrides(label_column=args.label_column, normal_value=args.normal_value).apply(schema)
    validate_for_training(frame, schema, path=path)  # no feature column: say which file
    print(f"training {args.detector} on {len(frame)} rows of {path} "
          f"({len(schema.feature_columns)} feature columns)", file=sys.stderr, flush=True)
    model = AnomalyModel(detector=args.detector, params=detector_params(args.detector, args.epochs, args.param),
                         device=args.device, seed=args.seed)
    model.fit(frame, schema, progress=StderrProgress())
    out = model.save(args.out)
    print(f"saved {args.detector} model to {out} ({model.rows_} rows, {model.fit_seconds_:.1f} s on {model.device_})")
    return 0


def _read(args):
    """(frame, schema, path): the whole file, or with ``--sample N`` a uniform sample drawn while streaming
    it (engine.sampling), its schema inferred from the sample."""
    from engine.io import infer_schema, load
    from engine.io.parquet import is_parquet

    if args.sample is None and not is_parquet(args.csv):
        loaded, schema = load(args.csv)
        return loaded.frame, schema, loaded.path
    if args.sample is not None and args.sample < 2:
        raise AnomalyDeskError("--sample needs at least 2 rows")
    from engine.scoring.files import iter_chunks

    chunks = iter_chunks(args.csv, 100_000)
    if args.sample is None:
        import pandas as pd

        frame = pd.concat(list(chunks), ignore_index=True)
    else:
        from engine.sampling import reservoir_sample

        frame = reservoir_sample(chunks, args.sample, seed=args.seed).reset_index(drop=True)
    return frame, infer_schema(frame, path=str(args.csv)), str(args.csv)
