"""``inspect CSV [--json]``: the inferred schema, roles with reasons, and problems found.

Exits 0 when the file can be read (problems, if any, are listed); an unusable file is an engine
DataError, which ``cli.main`` prints as one line and exits 2.
"""

from __future__ import annotations

import json
from typing import Any

from engine import io as engine_io
from engine.safe_json import jsonable

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def register(sub) -> None:
    p = sub.add_parser("inspect", help="show the inferred schema and data problems of a CSV file")
    p.add_argument("csv", help="CSV file (plain, .gz, .zip, .bz2 or .xz)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def inspect_file(path: str) -> dict[str, Any]:
    """The ``inspect --json`` object for a file (raises engine.errors.DataError when it is unusable)."""
    loaded, schema = engine_io.load(path)
    return jsonable({
        "file": loaded.path, "rows": len(loaded.frame), "n_columns": len(loaded.frame.columns),
        "encoding": loaded.encoding, "delimiter": loaded.delimiter, "compression": loaded.compression,
        "columns": [c.to_dict() for c in schema.columns], "label_column": schema.label_column,
        "normal_value": schema.normal_value, "feature_columns": schema.feature_columns,
        "problems": loaded.problems + schema.problems,
    })


def _stat(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.5g}"
    text = str(value)
    return text if len(text) <= 19 else text[:18] + "…"


def run(args) -> int:
    result = inspect_file(args.csv)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    delimiter = DELIMITER_NAMES.get(result["delimiter"], repr(result["delimiter"]))
    packed = f", {result['compression']}" if result["compression"] else ""
    print(f"{result['file']}: {result['rows']:,} rows, {result['n_columns']:,} columns "
          f"({result['encoding']}, {delimiter}-separated{packed})")
    width = min(max([6] + [len(c["name"]) for c in result["columns"]]), 32)
    print(f"  {'column':<{width}}  {'role':<11}  {'missing':>7}  {'distinct':>8}  {'min':>11}  {'max':>11}  reason")
    for c in result["columns"]:
        lo, hi = _stat(c["min"]), _stat(c["max"])
        print(f"  {c['name'][:width]:<{width}}  {c['role']:<11}  {c['missing_share']:>7.1%}  {c['n_distinct']:>8,}  "
              f"{lo:>11}  {hi:>11}  {c['reason']}")
        if c["top_values"] and c["role"] in ("categorical", "label"):
            top = ", ".join(f"{v} ({n:,})" for v, n in zip(c["top_values"], c.get("top_counts") or [], strict=False))
            print(f"  {'':<{width}}  most frequent: {top}")
    label = result["label_column"]
    print(f"label column: {label} (normal value: {result['normal_value']})" if label else "label column: none found")
    print(f"features: {len(result['feature_columns'])} of {result['n_columns']} columns")
    if result["problems"]:
        print(f"problems ({len(result['problems'])}):")
        for p in result["problems"]:
            print(f"  - {p}")
    else:
        print("problems: none")
    return 0
