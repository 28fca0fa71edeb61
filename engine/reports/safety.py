"""Making exported files safe to open, and writing them so nothing half-written is left behind.

Spreadsheet formula injection (OWASP "CSV injection", the rule in engine.spreadsheet): text cells and
column names that could be run as a formula are prefixed with a single quote in CSV; in XLSX they are
written as strings with the quote-prefix format. Genuine numbers (a float -1.5) are never touched.
"""

from __future__ import annotations

from engine.atomic import atomic_output  # noqa: F401 - re-exported: exports write through it
from engine.spreadsheet import (  # noqa: F401 - re-exported: the exports' one entry point
    FORMULA_PREFIXES,
    is_formula_like,
    neutralise_frame,
    neutralise_text,
    restore_text,
)
