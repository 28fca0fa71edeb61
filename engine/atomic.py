"""Atomic file writes: temporary file beside the target, fsync, rename, fsync of the folder.

A kill at any moment leaves either the previous file or the complete new one, never half of it.
Used by exports, scores, projects and model bundles.

A killed write leaves its temporary file behind. Temporaries are named
``.<target name>.<pid>.<random>.part`` (bundles: ``.<name>.tmp-<pid>-<random>``), so the next write to the
same target removes those whose process is gone (or that are over a day old, in case the pid was reused).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from engine.errors import DataError


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


STALE_AFTER_S = 24 * 3600  # a temporary older than this is stale even if its pid is alive again


def temp_prefix(target: Path, kind: str = ".") -> str:
    """The prefix of this process's temporaries for ``target`` (``kind`` "." for files, ".tmp-" for
    bundle folders): the pid in the name tells a later process whether the writer is gone."""
    return f".{target.name}{kind}{os.getpid()}{'.' if kind == '.' else '-'}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or cannot tell): leave it
    return True


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove the temporaries that killed writes to ``target`` left beside it; returns what was removed."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    pattern = re.compile(r"^\." + re.escape(target.name)
                         + r"(?:\.(?:(?P<pid>\d+)\.)?[^/]*\.part|\.tmp-(?:(?P<dpid>\d+)-)?[^/]*)$")
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or entry.is_symlink():
            continue
        pid = match.group("pid") or match.group("dpid")
        try:
            old = now - entry.lstat().st_mtime > STALE_AFTER_S
        except OSError:
            continue
        if not old and pid is not None and _alive(int(pid)):
            continue
        if not old and pid is None and now - entry.lstat().st_mtime < 3600:
            continue  # a temporary from before pids were in the name: give a live writer an hour
        with contextlib.suppress(OSError):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and renamed onto
    ``path``, on any error it is removed, so ``path`` is either the old file or the complete new one."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DataError("the folder to write into does not exist", file=str(path))
    remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".part", dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates the file private (0600); give the result the usual permissions of a new file.
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
