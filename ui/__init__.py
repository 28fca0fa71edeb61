"""Anomaly Desk's Qt user interface (PySide6 + pyqtgraph). Engine logic never lives here.

PySide6-Essentials 6.12.0 is excluded in pyproject.toml: on CPython 3.11 each call of a void
PySide6 method drops a reference to None, and the process aborts ("none_dealloc") after a few
thousand GUI calls. 6.11.3 is unaffected (measured: None's refcount unchanged after 1,000 calls).
"""
