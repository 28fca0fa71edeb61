"""The verdict store: SQLite (WAL, ``synchronous=FULL``), one commit per verdict, an audit trail
and undo. FULL adds an fsync of the WAL per commit, so a verdict also survives an OS crash; verdicts
arrive at human pace, so the stronger guarantee costs nothing noticeable."""

from __future__ import annotations

import csv
import getpass
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.errors import AnomalyDeskError, DataError
from engine.feedback.keys import _split_hash_key

VERDICTS = ("anomaly", "normal", "unsure")
DEFAULT_REASONS = (
    "confirmed fraud",
    "data entry error",
    "known exception",
    "duplicate",
    "policy breach",
    "expected seasonal",
    "needs follow-up",
)
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class VerdictRecord:
    key: str
    verdict: str | None  # "anomaly" | "normal" | "unsure"; None for a record with only a note
    note: str = ""
    reason: str = ""
    user: str = ""
    time: str = ""  # ISO 8601 UTC


@dataclass(frozen=True)
class AuditEntry:
    key: str
    old: str | None  # verdict before the change
    new: str | None  # verdict after the change
    note: str
    reason: str
    user: str
    time: str
    action: str = "set"  # set | note | clear | import | undo
    id: int = 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _check_verdict(verdict: Any, *, file: str | None = None, row: int | None = None) -> str:
    v = str(verdict).strip().lower() if verdict is not None else ""
    if v not in VERDICTS:
        raise DataError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}",
                        file=file, row=row, column="verdict" if file else None)
    return v


class VerdictStore:
    """Verdicts of one review project, in one SQLite database file.

    Every write is its own committed transaction (WAL, ``synchronous=FULL``): when ``set_verdict``
    returns, the verdict is on disk and survives the process being killed right after. Every change
    appends to the ``audit`` table (key, old, new, note, reason, user, time) and can be undone with
    ``undo()``; undo itself is audited. Safe to share between the GUI thread and a worker thread (one
    connection guarded by a lock)."""

    def __init__(self, path: str | Path, user: str | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            raise AnomalyDeskError(f"{self.path}: is a directory, not a verdict database")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if user is None:
            try:
                user = getpass.getuser()
            except Exception:  # noqa: BLE001 - no login name (containers): fall back
                user = "analyst"
        self.user = user
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._create()
        except sqlite3.DatabaseError as exc:
            raise AnomalyDeskError(f"{self.path}: not a usable verdict database ({exc})") from None

    # -- set-up --------------------------------------------------------------------------------
    def _create(self) -> None:
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            c.execute("""CREATE TABLE IF NOT EXISTS verdicts (
                key TEXT PRIMARY KEY, verdict TEXT, note TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '', user TEXT NOT NULL DEFAULT '', time TEXT NOT NULL)""")
            c.execute("""CREATE TABLE IF NOT EXISTS audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, action TEXT NOT NULL,
                old_verdict TEXT, new_verdict TEXT, old_note TEXT, new_note TEXT,
                old_reason TEXT, new_reason TEXT, user TEXT NOT NULL, time TEXT NOT NULL,
                undone INTEGER NOT NULL DEFAULT 0, undoes INTEGER)""")
            c.execute("CREATE TABLE IF NOT EXISTS reasons (code TEXT PRIMARY KEY, position INTEGER)")
            row = c.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            if row is None:
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                c.executemany("INSERT OR IGNORE INTO reasons VALUES (?, ?)",
                              [(r, i) for i, r in enumerate(DEFAULT_REASONS)])
            elif int(row[0]) > SCHEMA_VERSION:
                raise AnomalyDeskError(f"{self.path}: written by a newer version (schema {row[0]})")

    class _Tx:
        def __init__(self, store: VerdictStore):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            self.store._conn.execute("BEGIN IMMEDIATE")
            return self.store._conn

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self.store._conn.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()

    def _tx(self) -> VerdictStore._Tx:
        if getattr(self, "_conn", None) is None:
            raise AnomalyDeskError("the verdict store is closed")
        return VerdictStore._Tx(self)

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _record(row) -> VerdictRecord:
        return VerdictRecord(key=row[0], verdict=row[1], note=row[2] or "", reason=row[3] or "",
                             user=row[4] or "", time=row[5] or "")

    def get(self, key: str) -> VerdictRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT key, verdict, note, reason, user, time FROM verdicts WHERE key=?",
                                     (str(key),)).fetchone()
        return self._record(row) if row else None

    def all(self) -> dict[str, VerdictRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, verdict, note, reason, user, time FROM verdicts ORDER BY time, key").fetchall()
        return {r[0]: self._record(r) for r in rows}

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def audit(self) -> list[AuditEntry]:
        """Every change, oldest first. ``note``/``reason`` are the values after the change."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, key, action, old_verdict, new_verdict, new_note, new_reason, user, time "
                "FROM audit ORDER BY id").fetchall()
        return [AuditEntry(key=r[1], old=r[3], new=r[4], note=r[5] or "", reason=r[6] or "", user=r[7],
                           time=r[8], action=r[2], id=r[0]) for r in rows]

    # -- writing -------------------------------------------------------------------------------
    def _write(self, c: sqlite3.Connection, key: str, verdict: str | None, note: str, reason: str,
               action: str, user: str | None = None, when: str | None = None, undoes: int | None = None) -> bool:
        old = c.execute("SELECT verdict, note, reason FROM verdicts WHERE key=?", (key,)).fetchone()
        old_v, old_n, old_r = old if old else (None, None, None)
        if old is not None and (old_v, old_n, old_r) == (verdict, note, reason):
            return False
        user = self.user if user is None else user
        when = when or _now()
        if verdict is None and not note and not reason:
            c.execute("DELETE FROM verdicts WHERE key=?", (key,))
        else:
            c.execute("INSERT INTO verdicts (key, verdict, note, reason, user, time) VALUES (?,?,?,?,?,?) "
                      "ON CONFLICT(key) DO UPDATE SET verdict=excluded.verdict, note=excluded.note, "
                      "reason=excluded.reason, user=excluded.user, time=excluded.time",
                      (key, verdict, note, reason, user, when))
        c.execute("INSERT INTO audit (key, action, old_verdict, new_verdict, old_note, new_note, old_reason, "
                  "new_reason, user, time, undoes) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                  (key, action, old_v, verdict, old_n, note, old_r, reason, user, when, undoes))
        return True

    def set_verdict(self, key: str, verdict: str, note: str = "", reason: str = "") -> VerdictRecord:
        """Record a verdict ("anomaly", "normal" or "unsure"); returns after the commit reached disk."""
        v = _check_verdict(verdict)
        key = str(key)
        with self._tx() as c:
            self._write(c, key, v, str(note or ""), str(reason or ""), "set")
        return self.get(key)

    def set_note(self, key: str, note: str) -> VerdictRecord | None:
        """Change the note of a record, keeping its verdict (a record may hold a note and no verdict)."""
        key = str(key)
        with self._tx() as c:
            old = c.execute("SELECT verdict, reason FROM verdicts WHERE key=?", (key,)).fetchone()
            verdict, reason = old if old else (None, "")
            self._write(c, key, verdict, str(note or ""), reason or "", "note")
        return self.get(key)

    def clear(self, key: str) -> None:
        """Remove a record's verdict, note and reason (audited, undoable)."""
        with self._tx() as c:
            self._write(c, str(key), None, "", "", "clear")

    def undo(self) -> AuditEntry | None:
        """Undo the most recent change not yet undone (repeated calls walk back further). Returns the
        change undone, or None when there is nothing to undo. The undo is itself an audit entry."""
        with self._tx() as c:
            row = c.execute("SELECT id, key, action, old_verdict, new_verdict, old_note, old_reason, new_note, "
                            "new_reason, user, time FROM audit WHERE undone=0 AND action!='undo' "
                            "ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                return None
            aid, key, action, old_v, new_v, old_n, old_r, new_n, new_r, user, when = row
            self._write(c, key, old_v, old_n or "", old_r or "", "undo", undoes=aid)
            c.execute("UPDATE audit SET undone=1 WHERE id=?", (aid,))
        return AuditEntry(key=key, old=old_v, new=new_v, note=new_n or "", reason=new_r or "", user=user,
                          time=when, action=action, id=aid)

    # -- reason codes --------------------------------------------------------------------------
    def reasons(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT code FROM reasons ORDER BY position, code")]

    def add_reason(self, code: str) -> None:
        code = str(code).strip()
        if not code:
            raise AnomalyDeskError("a reason code cannot be empty")
        with self._tx() as c:
            pos = c.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM reasons").fetchone()[0]
            c.execute("INSERT OR IGNORE INTO reasons VALUES (?, ?)", (code, pos))

    def remove_reason(self, code: str) -> None:
        """Remove a code from the list offered; verdicts already given keep their reason text."""
        with self._tx() as c:
            c.execute("DELETE FROM reasons WHERE code=?", (str(code),))

    # -- CSV -----------------------------------------------------------------------------------
    CSV_COLUMNS = ("key", "verdict", "note", "reason", "user", "time")

    def export_csv(self, path: str | Path) -> int:
        """Write all verdicts as CSV (key, verdict, note, reason, user, time); atomic replace."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        records = list(self.all().values())
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(self.CSV_COLUMNS)
            for r in records:
                w.writerow([r.key, r.verdict or "", r.note, r.reason, r.user, r.time])
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        return len(records)

    def import_csv(self, path: str | Path) -> int:
        """Read verdicts from a CSV written by ``export_csv`` (or by hand: columns key and verdict are
        required). All rows are checked first, then applied in one audited transaction. Returns the
        number of records changed."""
        path = Path(path)
        if not path.is_file():
            raise DataError("file not found", file=str(path))
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
                header = rows[0].keys() if rows else []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"cannot be read as a verdict CSV ({exc})", file=str(path)) from None
        if rows and not {"key", "verdict"} <= set(header):
            raise DataError("a verdict CSV needs the columns key and verdict", file=str(path))
        parsed = []
        for i, r in enumerate(rows, start=2):
            key = (r.get("key") or "").strip()
            if not key:
                raise DataError("empty key", file=str(path), row=i, column="key")
            v = (r.get("verdict") or "").strip()
            verdict = _check_verdict(v, file=str(path), row=i) if v else None
            parsed.append((key, verdict, r.get("note") or "", r.get("reason") or "",
                           (r.get("user") or "").strip() or None, (r.get("time") or "").strip() or None))
        changed = 0
        with self._tx() as c:
            for key, verdict, note, reason, user, when in parsed:
                changed += self._write(c, key, verdict, note, reason, "import", user=user, when=when)
        return changed

    # -- re-attachment -------------------------------------------------------------------------
    def attach(self, keys: Iterable[str]) -> tuple[dict[int, VerdictRecord], list[str]]:
        """Map stored verdicts onto the rows of the data now loaded.

        ``keys`` are ``record_keys(frame, schema)`` of that data. Returns ``(matched, orphans)``:
        ``matched`` maps row index -> VerdictRecord, ``orphans`` lists stored keys whose record is not
        in the data (reported, never dropped). Content keys (``#pos:hash``) whose position moved are
        re-attached by their hash (a re-exported copy with reordered rows); duplicates of the same
        content go to the nearest unclaimed position."""
        keys = [str(k) for k in keys]
        records = self.all()
        index = {k: i for i, k in enumerate(keys)}
        matched: dict[int, VerdictRecord] = {}
        pending: list[tuple[str, VerdictRecord]] = []
        for k, rec in records.items():
            i = index.get(k)
            if i is not None:
                matched[i] = rec
            else:
                pending.append((k, rec))
        orphans: list[str] = []
        if pending:
            by_hash: dict[str, list[int]] = {}
            for i, k in enumerate(keys):
                parts = _split_hash_key(k)
                if parts is not None and i not in matched:
                    by_hash.setdefault(parts[1], []).append(i)
            for k, rec in pending:
                parts = _split_hash_key(k)
                candidates = by_hash.get(parts[1], []) if parts else []
                candidates = [i for i in candidates if i not in matched]
                if candidates:
                    best = min(candidates, key=lambda i: abs(i - parts[0]))
                    matched[best] = rec
                else:
                    orphans.append(k)
        return matched, orphans

    def verdicts_by_row(self, keys: Iterable[str]) -> dict[int, str]:
        """``{row index: verdict}`` for the rows of the data now loaded (what
        ``retrain_with_verdicts`` takes); records with only a note are left out."""
        matched, _orphans = self.attach(keys)
        return {i: rec.verdict for i, rec in matched.items() if rec.verdict}

    def close(self) -> None:
        with self._lock:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> VerdictStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
