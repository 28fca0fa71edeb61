"""``inspect CSV [--json]``: the inferred schema, roles with reasons, and problems found."""

from __future__ import annotations

import json

from engine import data


def register(sub) -> None:
    p = sub.add_parser("inspect", help="show the inferred schema and data problems of a CSV file")
    p.add_argument("csv", help="CSV file (plain, .gz or .zip)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    loaded, schema = data.load(args.csv)
    result = {"file": loaded.path, "rows": len(loaded.frame), "n_columns": len(loaded.frame.columns),
              "encoding": loaded.encoding, "delimiter": loaded.delimiter, **schema.to_dict(),
              "problems": loaded.problems + schema.problems}
    if args.json:
        print(json.dumps(result, default=str))
        return 0
    print(f"{loaded.path}: {result['rows']} rows, {result['n_columns']} columns")
    for c in schema.columns:
        print(f"  {c.name:<24} {c.role.value:<12} {c.reason}")
    print(f"label column: {schema.label_column} (normal value: {schema.normal_value})")
    for p in result["problems"]:
        print(f"  problem: {p}")
    return 0
