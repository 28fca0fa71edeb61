"""Data problems the reader's type planning does not see on its own.

A column mixing numbers and text (``y`` = 2, abc, 6, blank) stays text when too few of its values
are numbers to call it numeric (engine.io.columns' NUMERIC_SHARE), and the text value that broke it was
never reported: the column was then shown as a category or ignored with "No problems found". This
module finds the text values among the numbers so the reader can report them, with their rows.
Works on a pandas Series or a pyarrow (Chunked)Array of text, vectorised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.io.source import MAX_LISTED  # rows and values quoted in a message

#: a text column is "numbers with text among them" when at least this share of its non-missing values
#: are numbers (below it, a few numbers among words are codes or names: "7", "Gate 7", "North")
MIN_NUMBER_SHARE = 0.5


@dataclass
class MixedValues:
    """Text values among numbers in one column: their 0-based positions, and counts."""

    positions: np.ndarray  # positions (0-based, in the column) of the text values
    numbers: int  # non-missing values that are numbers
    texts: int  # non-missing values that are not
    examples: list[str] = field(default_factory=list)

    def describe(self, column: str, row_of: Callable[[int], int] | None = None) -> str:
        """One sentence naming the column, the rows (file rows with ``row_of``, else 1-based
        positions) and example values, in the style of the reader's other problems."""
        row_of = row_of or (lambda i: int(i) + 1)
        shown = [int(i) for i in self.positions[:MAX_LISTED]]
        rows = ", ".join(str(row_of(i)) for i in shown) + (", ..." if len(self.positions) > MAX_LISTED else "")
        total = self.numbers + self.texts
        plural = self.texts != 1
        return (f"column '{column}' mixes numbers and text: {self.numbers} of {total} values are numbers, "
                f"{self.texts} {'are' if plural else 'is'} text (row{'s' if plural else ''} {rows}: "
                f"{', '.join(repr(e) for e in self.examples)}); read as text, so its numbers are not used "
                "as numbers: correct the text values, or set the column's role")


def _as_series(values: Any) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pa = None
    if pa is not None and isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pd.Series(values.to_pylist(), dtype=object)
    return pd.Series(list(values), dtype=object)


def text_among_numbers(values: Any, min_number_share: float = MIN_NUMBER_SHARE) -> MixedValues | None:
    """The text values of a column that is mostly numbers, or None when the column is not mixed
    (all numbers, all text, mostly text, or a numeric dtype already). Blank and missing values are
    neither numbers nor text."""
    s = _as_series(values)
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return None
    text = s.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy(dtype=bool)
    n_present = int(present.sum())
    if n_present < 2:
        return None
    # a number as the reader writes one: "2", "-1.5", "1e3" (thousands separators are decided by the
    # reader's number style, which turns such a column numeric before this is asked)
    number = pd.to_numeric(text.where(pd.Series(present)), errors="coerce").notna().to_numpy(dtype=bool)
    is_text = present & ~number
    n_numbers, n_texts = int(number.sum()), int(is_text.sum())
    if n_texts == 0 or n_numbers == 0 or n_numbers < min_number_share * n_present:
        return None
    positions = np.flatnonzero(is_text)
    examples = list(dict.fromkeys(str(text.iloc[i]) for i in positions[:MAX_LISTED]))
    return MixedValues(positions=positions, numbers=n_numbers, texts=n_texts, examples=examples)
