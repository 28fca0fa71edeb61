"""Anomaly Desk engine: all computation, no Qt.

Modules that need torch import it themselves; importing ``engine`` or its data layer does not,
so the GUI starts fast and ``ui`` never pulls torch in at module level.
"""

__version__ = "0.1.0"
