"""Anomaly Desk's Qt user interface (PySide6 + pyqtgraph). Engine logic never lives here."""

import sys


def _shield_singleton_refcounts() -> None:
    """Work around a reference-counting bug of PySide6 6.12.0 on CPython 3.11.

    Measured here: every call of a PySide6 method that returns void (``QLabel.setText``,
    ``QWidget.setVisible``...) hands back ``None`` without a new reference, so each call lowers
    None's reference count by one. It starts near 5,000, and the process aborts with "Fatal Python
    error: none_dealloc" after a few thousand GUI calls (a minute of use). CPython 3.12+ makes None
    immortal (PEP 683), which is why the bug does not show there. The same happens to True/False
    returned by Python overrides of virtual methods (``eventFilter``). Until PySide6 is fixed, give
    these singletons the same effective immortality on 3.11: a reference count no session can use up.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes

    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt: first field of every object
        if refcount.value < 1 << 40:
            refcount.value += 1 << 40


_shield_singleton_refcounts()
