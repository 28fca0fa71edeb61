"""Moved to ``engine.scoring.blocks``; this name stays until ui/main_window.py imports the new one."""

from engine.scoring.blocks import score_in_blocks

__all__ = ["score_in_blocks"]
