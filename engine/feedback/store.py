"""The verdict store: SQLite (WAL, ``synchronous=FULL``), one commit per verdict, an audit trail
and undo. FULL adds an fsync of the WAL per commit, so a verdict also survives an OS crash; verdicts
arrive at human pace, so the stronger guarantee costs nothing noticeable.

A store is recognised before anything is written to it: its tables and the identifier (``store_id``)
written in its ``meta`` table at creation. A file that is not a store (another application's SQLite
database, an empty file) is refused untouched, a project opens only the store whose id it recorded,
a damaged store (``PRAGMA quick_check``) is refused with the way to salvage it, and a store opened
read-only (``report``, a read-only file) is never written to, not even its journal mode."""

from __future__ import annotations

import csv
import getpass
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from engine.atomic import atomic_output
from engine.errors import AnomalyDeskError, DataError
from engine.feedback.keys import _split_hash_key
from engine.spreadsheet import neutralise_text, restore_text

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
SCHEMA_VERSION = 2  # 2: verdicts.content (row content hash), audit.batch (bulk verdicts), meta store_id
STORE_FORMAT = "anomaly-desk-verdicts"
_TABLES = {"meta": {"name", "value"}, "verdicts": {"key", "verdict", "note", "reason", "user", "time"},
           "audit": {"id", "key", "action", "old_verdict", "new_verdict", "old_note", "new_note", "old_reason",
                     "new_reason", "user", "time", "undone", "undoes"},
           "reasons": {"code", "position"}}


class NotAVerdictStore(AnomalyDeskError):
    """The file exists but is not a verdict store (or not this project's): it was left untouched."""


class DamagedStoreError(AnomalyDeskError):
    """The store failed its integrity check: nothing more is written to it."""


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


@dataclass(frozen=True)
class Attachment:
    """How the stored verdicts met the rows of the data now loaded: what the window and the reports
    show, so "5 verdicts" never means 0 attached without a word."""

    matched: dict[int, VerdictRecord]  # row index -> the verdict attached to it
    total: int  # verdicts in the store
    same: int = 0  # attached under their own key (content unchanged where it is known)
    moved: list[tuple[str, int]] = field(default_factory=list)  # (stored key, row): found by content elsewhere
    changed: list[tuple[str, int]] = field(default_factory=list)  # (key, row): same key, other content; NOT attached
    orphans: list[str] = field(default_factory=list)  # stored keys whose record is not in the data
    unchecked: int = 0  # attached by identifier with no recorded content to compare

    @property
    def attached(self) -> int:
        return len(self.matched)

    @property
    def complete(self) -> bool:
        """Every verdict attached, none by content to a moved row and none withheld."""
        return self.attached == self.total and not self.moved

    def summary(self) -> str:
        """One line: ``5 verdicts: 3 on the same rows, 1 on a row that moved, 1 no longer matches (...)``."""
        if self.total == 0:
            return "no verdicts"
        parts = [f"{self.same:,} on the same rows"]
        if self.moved:
            parts.append(f"{len(self.moved):,} on rows that moved (found by their content)")
        if self.changed:
            keys = ", ".join(k for k, _ in self.changed[:3]) + (", ..." if len(self.changed) > 3 else "")
            parts.append(f"{len(self.changed):,} not attached: the row with the same identifier has other "
                         f"content now ({keys})")
        if self.orphans:
            keys = ", ".join(self.orphans[:3]) + (", ..." if len(self.orphans) > 3 else "")
            parts.append(f"{len(self.orphans):,} not attached: no longer in the data ({keys})")
        line = f"{self.total:,} verdicts, {self.attached:,} attached: " + "; ".join(parts)
        if self.unchecked:
            line += f" ({self.unchecked:,} matched by identifier only: their content was not recorded)"
        return line


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


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

    def __init__(self, path: str | Path, user: str | None = None, *, read_only: bool = False,
                 create: bool = True, expected_id: str | None = None):
        """Open the store at ``path``; create it there when it does not exist and ``create`` is true.

        A file that exists is first inspected read-only: if it is not a verdict store (another
        database, an empty or a damaged file) or its ``store_id`` is not ``expected_id`` (the id a
        project recorded), it is refused and left byte-for-byte as it was. ``read_only`` opens with
        SQLite's ``mode=ro`` (a read-only file works too) and refuses every write."""
        self.path = Path(path)
        self.read_only = read_only
        if self.path.is_dir():
            raise AnomalyDeskError(f"{self.path}: is a directory, not a verdict database")
        if user is None:
            try:
                user = getpass.getuser()
            except Exception:  # noqa: BLE001 - no login name (containers): fall back
                user = "analyst"
        self.user = user
        self._lock = threading.RLock()
        self._conn = None
        exists = self.path.exists()
        if not exists:
            if read_only or not create:
                raise AnomalyDeskError(f"{self.path}: the verdict database does not exist")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connect("rwc")
            try:
                self._create()
            except sqlite3.DatabaseError as exc:
                self.close()
                raise AnomalyDeskError(f"{self.path}: cannot create a verdict database ({exc})") from None
        else:
            # inspect through a read-only connection first: nothing is written to a file not ours
            self._connect("ro")
            try:
                self._recognise(expected_id)
                self._check_integrity()
                if not read_only:
                    self.close()
                    self._connect("rw")
                    self._conn.execute("PRAGMA journal_mode=WAL")
                    self._conn.execute("PRAGMA synchronous=FULL")
                    self._conn.execute("PRAGMA foreign_keys=ON")
                    self._migrate()
            except AnomalyDeskError:
                self.close()
                raise
            except sqlite3.DatabaseError as exc:
                self.close()
                raise NotAVerdictStore(f"{self.path}: not a usable verdict database ({exc}); it was left "
                                       "untouched") from None

    # -- set-up --------------------------------------------------------------------------------
    def _connect(self, mode: str) -> None:
        """``mode`` "rwc" (create), "rw" or "ro". Read-only: SQLite's ``immutable`` when no other
        connection has a write-ahead log open (so not even a -wal/-shm file appears beside the store),
        else ``mode=ro``, which reads the log a live writer (the window) has not checkpointed yet."""
        where = quote(str(self.path.resolve()))
        wal = self.path.with_name(self.path.name + "-wal")
        uri = f"file:{where}?mode={mode}" + ("&immutable=1" if mode == "ro" and not wal.exists() else "")
        try:
            self._conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            self.close()
            if mode == "ro":
                raise AnomalyDeskError(f"{self.path}: cannot read the verdict database ({exc})") from None
            raise AnomalyDeskError(f"{self.path}: cannot open the verdict database for writing ({exc}); "
                                   "a read-only file can be opened read-only (report)") from None
        except sqlite3.DatabaseError as exc:
            self.close()
            raise NotAVerdictStore(f"{self.path}: not a verdict database ({exc}); it was left untouched") from None

    def _recognise(self, expected_id: str | None) -> None:
        """Refuse, before writing anything, a file that is not a verdict store or not the one expected."""
        c = self._conn
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        what = "an empty file" if self.path.stat().st_size == 0 else (
            f"a database with tables {', '.join(sorted(tables)[:5])}" if tables else "an empty database")
        ours = set(_TABLES) <= tables and tables - set(_TABLES) <= {"sqlite_sequence"}
        if ours:
            for table, columns in _TABLES.items():
                have = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
                ours = ours and columns <= have
        meta = dict(c.execute("SELECT name, value FROM meta").fetchall()) if ours else {}
        if ours and meta.get("format", STORE_FORMAT) != STORE_FORMAT:
            ours = False
        if not ours or "schema_version" not in meta:
            raise NotAVerdictStore(f"{self.path}: exists but is not an Anomaly Desk verdict store ({what}); "
                                   "it was left untouched: choose another file for the verdicts")
        try:
            version = int(meta["schema_version"])
        except ValueError:
            raise NotAVerdictStore(f"{self.path}: not a usable verdict database (schema version "
                                   f"{meta['schema_version']!r}); it was left untouched") from None
        if version > SCHEMA_VERSION:
            raise AnomalyDeskError(f"{self.path}: written by a newer version (schema {version})")
        self.store_id = meta.get("store_id")
        if expected_id is not None and self.store_id != expected_id:
            raise NotAVerdictStore(f"{self.path}: is another verdict store (id {self.store_id or 'none'}), not "
                                   f"this project's ({expected_id}); it was left untouched")

    def _check_integrity(self) -> None:
        try:
            rows = [r[0] for r in self._conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            raise DamagedStoreError(self._damaged_message("; ".join(rows)[:300]))

    def _damaged_message(self, detail: str) -> str:
        return (f"{self.path}: the verdict store is damaged ({detail}); nothing more is written to it. "
                f"Recover what can be read with 'python main.py salvage-verdicts {self.path}' (verdicts and "
                "audit entries to CSV), then import the verdicts CSV into a new store")

    def _create(self) -> None:
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            c.execute("""CREATE TABLE IF NOT EXISTS verdicts (
                key TEXT PRIMARY KEY, verdict TEXT, note TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '', user TEXT NOT NULL DEFAULT '', time TEXT NOT NULL,
                content TEXT)""")
            c.execute("""CREATE TABLE IF NOT EXISTS audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, action TEXT NOT NULL,
                old_verdict TEXT, new_verdict TEXT, old_note TEXT, new_note TEXT,
                old_reason TEXT, new_reason TEXT, user TEXT NOT NULL, time TEXT NOT NULL,
                undone INTEGER NOT NULL DEFAULT 0, undoes INTEGER, batch TEXT)""")
            c.execute("CREATE TABLE IF NOT EXISTS reasons (code TEXT PRIMARY KEY, position INTEGER)")
            c.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            c.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
            c.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
            c.executemany("INSERT OR IGNORE INTO reasons VALUES (?, ?)", [(r, i) for i, r in enumerate(DEFAULT_REASONS)])
            self.store_id = c.execute("SELECT value FROM meta WHERE name='store_id'").fetchone()[0]
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")

    def _migrate(self) -> None:
        """A schema-1 store (ours: recognised by its tables) gains the columns and the id of schema 2."""
        with self._tx() as c:
            if "content" not in {r[1] for r in c.execute("PRAGMA table_info(verdicts)")}:
                c.execute("ALTER TABLE verdicts ADD COLUMN content TEXT")
            if "batch" not in {r[1] for r in c.execute("PRAGMA table_info(audit)")}:
                c.execute("ALTER TABLE audit ADD COLUMN batch TEXT")
            c.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
            c.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
            c.execute("UPDATE meta SET value=? WHERE name='schema_version' AND CAST(value AS INTEGER) < ?",
                      (str(SCHEMA_VERSION), SCHEMA_VERSION))
            self.store_id = c.execute("SELECT value FROM meta WHERE name='store_id'").fetchone()[0]

    class _Tx:
        def __init__(self, store: VerdictStore):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            try:
                self.store._conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
            return self.store._conn

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self.store._conn.execute("ROLLBACK" if exc_type else "COMMIT")
            except sqlite3.DatabaseError as failure:
                if exc_type is None:
                    exc = failure
            finally:
                self.store._lock.release()
            if isinstance(exc, sqlite3.DatabaseError) and _is_damage(exc):
                # the file was damaged while open (by another program, a disk fault): stop writing to it
                self.store.read_only = True
                raise DamagedStoreError(self.store._damaged_message(str(exc))) from None
            if exc_type is None and exc is not None:
                raise exc

    def _tx(self) -> VerdictStore._Tx:
        if getattr(self, "_conn", None) is None:
            raise AnomalyDeskError("the verdict store is closed")
        if self.read_only:
            raise AnomalyDeskError(f"{self.path}: the verdict store is open read-only: nothing can be changed")
        return VerdictStore._Tx(self)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of a query; a damaged page becomes a DamagedStoreError saying how to recover."""
        if getattr(self, "_conn", None) is None:
            raise AnomalyDeskError("the verdict store is closed")
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise DamagedStoreError(self._damaged_message(str(exc))) from None

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _record(row) -> VerdictRecord:
        return VerdictRecord(key=row[0], verdict=row[1], note=row[2] or "", reason=row[3] or "",
                             user=row[4] or "", time=row[5] or "")

    def get(self, key: str) -> VerdictRecord | None:
        rows = self._read("SELECT key, verdict, note, reason, user, time FROM verdicts WHERE key=?", (str(key),))
        return self._record(rows[0]) if rows else None

    def all(self) -> dict[str, VerdictRecord]:
        rows = self._read("SELECT key, verdict, note, reason, user, time FROM verdicts ORDER BY time, key")
        return {r[0]: self._record(r) for r in rows}

    def contents(self) -> dict[str, str]:
        """The content hash recorded with each verdict (where the caller gave one; none in a schema-1
        store opened read-only, which is not migrated)."""
        if "content" not in {r[1] for r in self._read("PRAGMA table_info(verdicts)")}:
            return {}
        return {k: h for k, h in self._read("SELECT key, content FROM verdicts WHERE content IS NOT NULL")}

    def __len__(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM verdicts")[0][0])

    def audit(self) -> list[AuditEntry]:
        """Every change, oldest first. ``note``/``reason`` are the values after the change."""
        rows = self._read("SELECT id, key, action, old_verdict, new_verdict, new_note, new_reason, user, time "
                          "FROM audit ORDER BY id")
        return [AuditEntry(key=r[1], old=r[3], new=r[4], note=r[5] or "", reason=r[6] or "", user=r[7],
                           time=r[8], action=r[2], id=r[0]) for r in rows]

    # -- writing -------------------------------------------------------------------------------
    def _write(self, c: sqlite3.Connection, key: str, verdict: str | None, note: str, reason: str,
               action: str, user: str | None = None, when: str | None = None, undoes: int | None = None,
               content: str | None = None, batch: str | None = None) -> bool:
        old = c.execute("SELECT verdict, note, reason, content FROM verdicts WHERE key=?", (key,)).fetchone()
        old_v, old_n, old_r, old_c = old if old else (None, None, None, None)
        if old is not None and (old_v, old_n, old_r) == (verdict, note, reason) and content in (None, old_c):
            return False
        user = self.user if user is None else user
        when = when or _now()
        if verdict is None and not note and not reason:
            c.execute("DELETE FROM verdicts WHERE key=?", (key,))
        else:
            c.execute("INSERT INTO verdicts (key, verdict, note, reason, user, time, content) VALUES (?,?,?,?,?,?,?) "
                      "ON CONFLICT(key) DO UPDATE SET verdict=excluded.verdict, note=excluded.note, "
                      "reason=excluded.reason, user=excluded.user, time=excluded.time, "
                      "content=COALESCE(excluded.content, verdicts.content)",
                      (key, verdict, note, reason, user, when, content))
        c.execute("INSERT INTO audit (key, action, old_verdict, new_verdict, old_note, new_note, old_reason, "
                  "new_reason, user, time, undoes, batch) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                  (key, action, old_v, verdict, old_n, note, old_r, reason, user, when, undoes, batch))
        return True

    def set_verdict(self, key: str, verdict: str, note: str = "", reason: str = "",
                    content: str | None = None) -> VerdictRecord:
        """Record a verdict ("anomaly", "normal" or "unsure"); returns after the commit reached disk.
        ``content``: the row's content hash (engine.feedback.content_hashes), kept so that a verdict on an
        identifier whose row has since changed is reported, not silently attached (``attach_report``)."""
        v = _check_verdict(verdict)
        key = str(key)
        with self._tx() as c:
            self._write(c, key, v, str(note or ""), str(reason or ""), "set", content=content)
        return self.get(key)

    def set_verdicts(self, keys: Sequence[str], verdict: str, note: str | Sequence[str] = "",
                     reason: str | Sequence[str] = "", contents: Sequence[str | None] | None = None) -> int:
        """The same verdict for many records, in ONE transaction under one batch id: all or nothing on
        disk, and one ``undo()`` takes the whole batch back. ``note``/``reason``: one text for all, or one
        per key (so a bulk verdict keeps each record's own note). Returns the number of records changed."""
        v = _check_verdict(verdict)
        keys = [str(k) for k in keys]
        notes = [note] * len(keys) if isinstance(note, str) or note is None else list(note)
        reasons = [reason] * len(keys) if isinstance(reason, str) or reason is None else list(reason)
        if len(notes) != len(keys) or len(reasons) != len(keys):
            raise AnomalyDeskError(f"set_verdicts: notes or reasons do not match the {len(keys)} keys")
        if contents is not None and len(contents) != len(keys):
            raise AnomalyDeskError(f"set_verdicts: {len(contents)} contents for {len(keys)} keys")
        batch = uuid.uuid4().hex
        when = _now()
        changed = 0
        with self._tx() as c:
            for i, key in enumerate(keys):
                changed += self._write(c, key, v, str(notes[i] or ""), str(reasons[i] or ""), "set", when=when, batch=batch,
                                       content=contents[i] if contents is not None else None)
        return changed

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
        """Undo this user's most recent action not yet undone (repeated calls walk back further); a batch
        (``set_verdicts``) is undone whole. Another analyst's changes are never undone: if one of them
        changed the same record since, the undo is refused. Returns the (latest) change undone, or None
        when this user has nothing to undo. The undo is itself an audit entry."""
        undone = self.undo_last_action()
        return undone[0] if undone else None

    def undo_last_action(self) -> list[AuditEntry]:
        """``undo()``, returning every change it took back (several for a batch), latest first."""
        cols = ("SELECT id, key, action, old_verdict, new_verdict, old_note, old_reason, new_note, new_reason, user, "
                "time, batch FROM audit WHERE undone=0 AND action!='undo' AND user=?")
        with self._tx() as c:
            row = c.execute(cols + " ORDER BY id DESC LIMIT 1", (self.user,)).fetchone()
            if row is None:
                return []
            rows = [row] if row[11] is None else c.execute(cols + " AND batch=? ORDER BY id DESC",
                                                          (self.user, row[11])).fetchall()
            out = []
            for aid, key, action, old_v, new_v, old_n, old_r, new_n, new_r, user, when, _batch in rows:
                other = c.execute("SELECT user FROM audit WHERE key=? AND id>? AND user!=? AND undone=0 "
                                  "AND action!='undo' ORDER BY id DESC LIMIT 1", (key, aid, self.user)).fetchone()
                if other is not None:
                    raise AnomalyDeskError(f"cannot undo your change to record {key}: {other[0]} changed it since "
                                           "(their verdict stands); give your verdict again instead")
                self._write(c, key, old_v, old_n or "", old_r or "", "undo", undoes=aid)
                c.execute("UPDATE audit SET undone=1 WHERE id=?", (aid,))
                out.append(AuditEntry(key=key, old=old_v, new=new_v, note=new_n or "", reason=new_r or "",
                                      user=user, time=when, action=action, id=aid))
        return out

    # -- reason codes --------------------------------------------------------------------------
    def reasons(self) -> list[str]:
        return [r[0] for r in self._read("SELECT code FROM reasons ORDER BY position, code")]

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
        """Write all verdicts as CSV (key, verdict, note, reason, user, time), atomically
        (engine.atomic), every cell that a spreadsheet could run as a formula neutralised
        (engine.spreadsheet: notes, reasons and user names come from people)."""
        records = list(self.all().values())
        with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow([neutralise_text(c) for c in self.CSV_COLUMNS])
            for r in records:
                w.writerow([neutralise_text(v) for v in (r.key, r.verdict or "", r.note, r.reason, r.user, r.time)])
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
            key = restore_text((r.get("key") or "").strip())
            if not key:
                raise DataError("empty key", file=str(path), row=i, column="key")
            v = (r.get("verdict") or "").strip()
            verdict = _check_verdict(v, file=str(path), row=i) if v else None
            parsed.append((key, verdict, r.get("note") or "", r.get("reason") or "",
                           (r.get("user") or "").strip() or None, (r.get("time") or "").strip() or None))
            parsed[-1] = tuple(restore_text(v) for v in parsed[-1])  # our exports quote formula-like text
        changed = 0
        with self._tx() as c:
            for key, verdict, note, reason, user, when in parsed:
                changed += self._write(c, key, verdict, note, reason, "import", user=user, when=when)
        return changed

    # -- re-attachment -------------------------------------------------------------------------
    def attach_report(self, keys: Iterable[str], contents: Sequence[str | None] | None = None) -> Attachment:
        """Map stored verdicts onto the rows of the data now loaded, and say how.

        ``keys`` are ``record_keys(frame, schema)`` of that data; ``contents`` (optional) its
        ``content_hashes``. A verdict is attached where its key is found, unless the content recorded
        with it differs from the row's content now (same document number, different row): that one is
        listed as ``changed`` and not attached. Verdicts whose key is gone are looked for by content
        (content keys ``#pos:hash`` of a copy with reordered or removed rows, or a recorded hash):
        found, they are ``moved``; else they are ``orphans`` (reported, never dropped). Duplicates of
        the same content go to the nearest unclaimed position."""
        keys = [str(k) for k in keys]
        if contents is not None and len(contents) != len(keys):
            raise AnomalyDeskError(f"attach: {len(contents)} content hashes for {len(keys)} keys")
        records = self.all()
        recorded = self.contents()
        current: list[str | None] = []
        for i, k in enumerate(keys):
            h = contents[i] if contents is not None else None
            if h is None:
                parts = _split_hash_key(k)
                h = parts[1] if parts else None
            current.append(h)
        index = {k: i for i, k in enumerate(keys)}
        matched: dict[int, VerdictRecord] = {}
        moved: list[tuple[str, int]] = []
        changed: list[tuple[str, int]] = []
        orphans: list[str] = []
        same = unchecked = 0
        pending: list[tuple[str, VerdictRecord, str | None, int]] = []
        for k, rec in records.items():
            parts = _split_hash_key(k)
            stored = recorded.get(k) or (parts[1] if parts else None)
            i = index.get(k)
            if i is not None and i not in matched:
                if stored is not None and current[i] is not None and stored != current[i]:
                    changed.append((k, i))
                    continue
                matched[i] = rec
                same += 1
                unchecked += stored is None or current[i] is None
            else:
                pending.append((k, rec, stored, parts[0] if parts else 0))
        if pending:
            by_hash: dict[str, list[int]] = {}
            for i, h in enumerate(current):
                if h is not None and i not in matched:
                    by_hash.setdefault(h, []).append(i)
            for k, rec, stored, pos in pending:
                candidates = [i for i in by_hash.get(stored, [])] if stored is not None else []
                candidates = [i for i in candidates if i not in matched]
                if candidates:
                    best = min(candidates, key=lambda i: abs(i - pos))
                    matched[best] = rec
                    moved.append((k, best))
                else:
                    orphans.append(k)
        return Attachment(matched=matched, total=len(records), same=same, moved=moved, changed=changed,
                          orphans=orphans, unchecked=unchecked)

    def attach(self, keys: Iterable[str]) -> tuple[dict[int, VerdictRecord], list[str]]:
        """``(matched, orphans)`` of ``attach_report``: row index -> VerdictRecord, and the stored keys
        not attached (gone, or their row's content changed)."""
        result = self.attach_report(keys)
        return result.matched, result.orphans + [k for k, _ in result.changed]

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


@dataclass(frozen=True)
class SalvageResult:
    verdicts: int
    audit_entries: int
    verdicts_csv: Path
    audit_csv: Path
    unreadable: int  # rows that could not be read


def _salvage_rows(conn: sqlite3.Connection, table: str, columns: str) -> tuple[list[tuple], int]:
    """Every row of ``table`` that can still be read: all at once, else one rowid at a time."""
    try:
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY rowid").fetchall(), 0
    except sqlite3.DatabaseError:
        pass
    try:
        top = int(conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0)
    except sqlite3.DatabaseError:
        top = None
    rows, missed, unreadable, rowid = [], 0, 0, 0
    limit = min(top, 10_000_000) if top is not None else None
    while (rowid < limit) if limit is not None else missed < 10_000:
        rowid += 1
        try:
            row = conn.execute(f"SELECT {columns} FROM {table} WHERE rowid=?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            unreadable += 1
            missed += 1
            continue
        if row is None:
            missed += 1
        else:
            rows.append(row)
            missed = 0
    return rows, unreadable


def salvage_store(path: str | Path, folder: str | Path | None = None) -> SalvageResult:
    """Export what can still be read from a (damaged) store, read-only: ``<name>.salvaged-verdicts.csv``
    (the ``export_csv`` layout, ready for ``import_csv`` into a new store) and
    ``<name>.salvaged-audit.csv``, beside it or in ``folder``. The store itself is not written to."""
    path = Path(path)
    if not path.is_file():
        raise AnomalyDeskError(f"{path}: no such verdict database")
    out_dir = Path(folder) if folder is not None else path.parent
    wal = path.with_name(path.name + "-wal")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NotAVerdictStore(f"{path}: not a verdict database ({exc}): nothing to salvage") from None
    try:
        verdicts, bad_v = _salvage_rows(conn, "verdicts", "key, verdict, note, reason, user, time")
        audit, bad_a = _salvage_rows(conn, "audit", "id, key, action, old_verdict, new_verdict, new_note, new_reason, "
                                                    "user, time")
    finally:
        conn.close()
    verdicts_csv = out_dir / f"{path.name}.salvaged-verdicts.csv"
    audit_csv = out_dir / f"{path.name}.salvaged-audit.csv"
    for target, header, rows in ((verdicts_csv, VerdictStore.CSV_COLUMNS, verdicts),
                                 (audit_csv, ("id", "key", "action", "old", "new", "note", "reason", "user", "time"),
                                  audit)):
        with atomic_output(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for row in rows:
                w.writerow([neutralise_text("" if v is None else v) for v in row])
    return SalvageResult(verdicts=len(verdicts), audit_entries=len(audit), verdicts_csv=verdicts_csv,
                         audit_csv=audit_csv, unreadable=bad_v + bad_a)
