"""Command-line interface: ``python main.py SUBCOMMAND``. Headless; the ``gui`` command imports
the Qt application lazily.

Each subcommand lives in its own module with ``register(subparsers)`` that adds a parser whose
``func`` default is ``run(args) -> int``. Engine errors are printed as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cli import compare, evaluate, gui, inspect, report, salvage_verdicts, score, simulate_review, train
from engine.errors import AnomalyDeskError

COMMANDS = (gui, inspect, train, score, evaluate, compare, simulate_review, report, salvage_verdicts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomaly-desk",
        description="Anomaly Desk: find, explain and review the few suspicious records in a large table. "
                    "Without a subcommand the GUI opens on the bundled sample.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv or ["gui"])
    try:
        return int(args.func(args) or 0)
    except AnomalyDeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `... | head`): not an error of ours; silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: one line, the traceback only on request
        if os.environ.get("ANOMALY_DESK_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set ANOMALY_DESK_DEBUG=1 for details)",
              file=sys.stderr)
        return 3
