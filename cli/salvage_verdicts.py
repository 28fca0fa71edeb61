"""``salvage-verdicts DB [--out FOLDER]``: export what can still be read from a damaged verdict store.

Reads the store read-only (it is never written to) and writes ``DB.salvaged-verdicts.csv`` (the
verdict CSV layout: import it into a new store) and ``DB.salvaged-audit.csv``.
"""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("salvage-verdicts", help="export the verdicts and audit trail still readable in a damaged store",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("db", metavar="DB", help="the verdict database (.sqlite)")
    p.add_argument("--out", metavar="FOLDER", help="folder for the CSV files (default: beside DB)")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.feedback import salvage_store

    result = salvage_store(args.db, args.out)
    print(f"salvaged {result.verdicts:,} verdicts to {result.verdicts_csv} and {result.audit_entries:,} audit "
          f"entries to {result.audit_csv}" + (f"; {result.unreadable:,} rows could not be read"
                                              if result.unreadable else ""), file=sys.stderr)
    return 0
