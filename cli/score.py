"""``score``: not built yet (see the open issues)."""

from __future__ import annotations

from engine.errors import AnomalyDeskError


def register(sub) -> None:
    p = sub.add_parser("score", help="(score: coming in a later release)")
    p.add_argument("rest", nargs="*")
    p.set_defaults(func=run)


def run(args) -> int:
    raise AnomalyDeskError("'score' is not available yet in this build")
