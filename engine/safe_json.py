"""JSON in and out: reading JSON that came from someone else (model bundles, safetensors headers,
projects), and ``jsonable`` for what we write.

The standard parser trusts its input: 100,000 nested brackets end in ``RecursionError``, a
100,000-digit integer in ``ValueError`` (or minutes of CPU before Python 3.11's digit limit), and
``1e999`` quietly becomes infinity. ``load_json`` caps the size, the nesting depth and the digits of a
number, refuses ``NaN``/``Infinity``/overflowing floats, and turns every failure into one
``ModelFileError`` line naming the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelFileError

MAX_DEPTH = 64  # our documents nest a handful of levels
MAX_NUMBER_CHARS = 400  # a float64 never needs more; an int beyond this is not a size or a count


class _Refused(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number with {len(text):,} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number with {len(text):,} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} is out of range (not finite)")
    return value


def _parse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number allowed here")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads(raw: bytes | str, source: str | Path, *, max_bytes: int | None = None,
          max_depth: int = MAX_DEPTH, what: str = "JSON") -> Any:
    """Parse ``raw`` (bytes or text) from ``source`` (named in every message) with the caps above."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise ModelFileError(f"{source}: refused: {len(raw):,} bytes is far too large for {what}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{source}: not valid {what} (not UTF-8 text at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError:
        raise ModelFileError(f"{source}: not valid {what} (nested too deeply)") from None
    except _Refused as exc:
        raise ModelFileError(f"{source}: not valid {what} ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{source}: not valid {what} ({exc.msg} at line {exc.lineno}, column {exc.colno})"
                             ) from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. the interpreter's own digit limit
        raise ModelFileError(f"{source}: not valid {what} ({str(exc).splitlines()[0][:200]})") from None
    if _depth_exceeds(value, max_depth):
        raise ModelFileError(f"{source}: not valid {what} (nested deeper than {max_depth} levels)")
    return value


def load_json(path: str | Path, *, max_bytes: int, what: str = "JSON") -> Any:
    """Read and parse the file at ``path`` with ``loads``; the size is checked before reading."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ModelFileError(f"{path}: refused: {size:,} bytes is far too large for {what}")
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return loads(raw, path, max_bytes=max_bytes, what=what)


def jsonable(value: Any) -> Any:
    """``value`` in plain JSON types, recursively: numpy scalars and arrays as numbers and lists, tuples
    as lists, keys as strings, and NaN / infinities as None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    return value
