"""docs/USER_GUIDE.md lists every keyboard shortcut the window has: each menu action's shortcut and
each review key of the cheat sheet (a shortcut added without documenting it fails here)."""

from __future__ import annotations

import re

from PySide6.QtGui import QAction, QKeySequence

from tests.conftest import REPO_ROOT
from ui.review_panel import CHEAT_SHEET

GUIDE = REPO_ROOT / "docs" / "USER_GUIDE.md"


def test_guide_has_the_loop_and_the_five_screens():
    text = GUIDE.read_text(encoding="utf-8")
    for step in ("**Load**", "**Train**", "**Review**", "**Feed back**", "**Report**"):
        assert step in text
    for i, screen in enumerate(("Data", "Train", "Review", "Threshold", "Compare"), start=1):
        assert f"{i} · {screen} | Ctrl+{i}" in text


def test_guide_lists_every_shortcut(make_window):
    text = GUIDE.read_text(encoding="utf-8")
    window = make_window()
    shortcuts = {a.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
                 for a in window.findChildren(QAction) if not a.shortcut().isEmpty()}
    assert {"Ctrl+O", "Ctrl+E", "Ctrl+R", "Ctrl+1", "Ctrl+5"} <= shortcuts
    for keys in sorted(shortcuts):
        numbered = re.fullmatch(r"Ctrl\+([1-5])", keys)
        assert keys in text or (numbered and "Ctrl+1 … Ctrl+5" in text), f"{keys} is not in {GUIDE.name}"
    review = text[text.index("Review queue"):]
    for key in re.findall(r"<b>([^<]+)</b>", CHEAT_SHEET):
        if key == "Keys":
            continue
        for part in re.split(r" or |/", key):
            assert re.search(rf"(?<!\w){re.escape(part.strip())}(?!\w)", review), f"review key {part!r} not listed"
