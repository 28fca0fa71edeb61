"""``gui [CSV]``: open the desktop application."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("gui", help="open the GUI (on the bundled sample when no CSV is given)")
    p.add_argument("csv", nargs="?", help="CSV file to open")
    p.set_defaults(func=run)


def run(args) -> int:
    from ui.app import run_app  # Qt only when the GUI is asked for

    return run_app(args.csv)
