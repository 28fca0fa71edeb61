"""The verdict store writes only to itself: a foreign database, an empty file or another project's store
is refused untouched; a damaged store is refused with a way to salvage it; read-only opening never
writes; undo is per analyst; bulk verdicts are one transaction and one undo."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest

from engine.errors import AnomalyDeskError
from engine.feedback import DamagedStoreError, NotAVerdictStore, VerdictStore, salvage_store
from engine.project import Project, open_verdict_store


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def _foreign(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO customers (name) VALUES (?)", [(f"c{i}",) for i in range(50)])
    conn.commit()
    conn.close()
    return path


FOREIGN = {
    "foreign sqlite": _foreign,
    "empty file": lambda p: (p.write_bytes(b""), p)[1],
    "text file": lambda p: (p.write_text("id,amount\n1,2\n"), p)[1],
    "meta-only sqlite": lambda p: (sqlite3.connect(p).executescript(
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', '1');"),
        p)[1],
}


@pytest.mark.parametrize("make", FOREIGN.values(), ids=FOREIGN.keys())
@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_not_a_store_is_refused_and_left_untouched(tmp_path, make, read_only):
    path = make(tmp_path / "other.db")
    before, files = _digest(path), _siblings(path)
    with pytest.raises(NotAVerdictStore, match="left untouched"):
        VerdictStore(path, user="alice", read_only=read_only)
    assert _digest(path) == before and _siblings(path) == files  # no -wal, no -journal, same bytes
    if path.read_bytes().startswith(b"SQLite format 3"):
        mode = sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute("PRAGMA journal_mode").fetchone()
        assert mode is None or mode[0] != "wal"


def test_a_project_opens_only_its_own_store(tmp_path):
    a = Project(data_file=str(tmp_path / "a.csv"), verdict_db=str(tmp_path / "a.verdicts.sqlite"))
    with open_verdict_store(a, tmp_path / "a.adproj", user="ana") as store:
        store.set_verdict("1", "anomaly")
    assert a.verdict_store_id
    a.save(tmp_path / "a.adproj")
    assert Project.load(tmp_path / "a.adproj").verdict_store_id == a.verdict_store_id
    # project b recorded another store's id but points at a's file
    b = Project(data_file=str(tmp_path / "b.csv"), verdict_db=a.verdict_db, verdict_store_id="0" * 32)
    before = _digest(tmp_path / "a.verdicts.sqlite")
    with pytest.raises(NotAVerdictStore, match="not this project's"):
        open_verdict_store(b, tmp_path / "b.adproj")
    assert _digest(tmp_path / "a.verdicts.sqlite") == before
    with open_verdict_store(Project.load(tmp_path / "a.adproj"), tmp_path / "a.adproj", read_only=True) as store:
        assert store.get("1").verdict == "anomaly"


def test_a_store_is_never_created_outside_the_project_folder_unless_chosen(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "elsewhere").mkdir()
    outside = tmp_path / "elsewhere" / "v.sqlite"
    p = Project(data_file=str(tmp_path / "d.csv"), verdict_db=str(outside))
    with pytest.raises(AnomalyDeskError, match="outside the project's folder"):
        open_verdict_store(p, tmp_path / "proj" / "p.adproj")
    assert not outside.exists()
    with pytest.raises(AnomalyDeskError, match="does not exist"):
        open_verdict_store(p, tmp_path / "proj" / "p.adproj", read_only=True)
    assert not outside.exists()
    open_verdict_store(p, tmp_path / "proj" / "p.adproj", outside_chosen=True).close()
    assert outside.exists() and p.verdict_store_id
    # once recorded, a missing store is not silently made anew
    outside.unlink()
    with pytest.raises(AnomalyDeskError, match="missing"):
        open_verdict_store(p, tmp_path / "proj" / "p.adproj", outside_chosen=True)


def test_read_only_opening_never_writes_and_refuses_writes(tmp_path):
    path = tmp_path / "v.sqlite"
    with VerdictStore(path, user="ana") as store:
        store.set_verdict("1", "anomaly", note="n")
    before, files = _digest(path), _siblings(path)
    with VerdictStore(path, read_only=True) as store:
        assert store.get("1").note == "n" and len(store.audit()) == 1
        with pytest.raises(AnomalyDeskError, match="read-only"):
            store.set_verdict("2", "normal")
        with pytest.raises(AnomalyDeskError, match="read-only"):
            store.undo()
    assert _digest(path) == before and _siblings(path) == files


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_file_in_a_read_only_folder_can_be_read(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "v.sqlite"
    with VerdictStore(path, user="ana") as store:
        store.set_verdict("1", "anomaly")
    os.chmod(path, 0o444)
    os.chmod(folder, 0o555)
    try:
        with VerdictStore(path, read_only=True) as store:
            assert store.get("1").verdict == "anomaly"
    finally:
        os.chmod(folder, 0o755)


def test_a_schema_1_store_is_still_ours_and_gains_an_id(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE verdicts (key TEXT PRIMARY KEY, verdict TEXT, note TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '', user TEXT NOT NULL DEFAULT '', time TEXT NOT NULL);
        CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, action TEXT NOT NULL,
            old_verdict TEXT, new_verdict TEXT, old_note TEXT, new_note TEXT, old_reason TEXT, new_reason TEXT,
            user TEXT NOT NULL, time TEXT NOT NULL, undone INTEGER NOT NULL DEFAULT 0, undoes INTEGER);
        CREATE TABLE reasons (code TEXT PRIMARY KEY, position INTEGER);
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO verdicts VALUES ('k', 'normal', '', '', 'ana', '2026-01-01');""")
    conn.commit()
    conn.close()
    before = _digest(path)
    with VerdictStore(path, read_only=True) as store:  # read as it is, not migrated
        result = store.attach_report(["k", "other"])
        assert result.attached == 1 and result.unchecked == 1 and store.store_id is None
    assert _digest(path) == before
    with VerdictStore(path, user="ana") as store:
        assert store.get("k").verdict == "normal" and store.store_id
        store.set_verdicts(["a", "b"], "anomaly")
        assert store.undo() is not None and store.get("a") is None


# -- undo per analyst -------------------------------------------------------------------------------
def test_undo_takes_back_only_the_users_own_actions(tmp_path):
    path = tmp_path / "shared.sqlite"
    alice, bob = VerdictStore(path, user="alice"), VerdictStore(path, user="bob")
    try:
        alice.set_verdict("a1", "anomaly")
        bob.set_verdict("b1", "normal")
        assert alice.undo().key == "a1"
        assert bob.get("b1").verdict == "normal"  # alice's undo did not touch bob's verdict
        assert alice.undo() is None  # nothing of alice's left
        assert bob.get("b1").verdict == "normal"
        # a record alice judged and bob judged since: her undo is refused, his verdict stands
        alice.set_verdict("shared", "anomaly")
        bob.set_verdict("shared", "normal", note="checked the invoice")
        with pytest.raises(AnomalyDeskError, match="bob changed it since"):
            alice.undo()
        assert alice.get("shared").verdict == "normal"
        assert bob.undo().key == "shared" and bob.get("shared").verdict == "anomaly"
    finally:
        alice.close()
        bob.close()


# -- bulk verdicts ----------------------------------------------------------------------------------
def test_set_verdicts_is_one_batch_and_one_undo(tmp_path):
    with VerdictStore(tmp_path / "v.sqlite", user="ana") as store:
        store.set_verdict("before", "normal")
        assert store.set_verdicts(["k1", "k2", "k3"], "anomaly", note="same vendor", reason="duplicate") == 3
        trail = store.audit()[-3:]
        assert {e.key for e in trail} == {"k1", "k2", "k3"}
        batches = {r[0] for r in store._conn.execute("SELECT batch FROM audit WHERE key LIKE 'k%'")}
        assert len(batches) == 1 and None not in batches
        undone = store.undo_last_action()
        assert sorted(e.key for e in undone) == ["k1", "k2", "k3"]
        assert set(store.all()) == {"before"}
        assert store.undo().key == "before"


def test_set_verdicts_writes_all_or_nothing(tmp_path, monkeypatch):
    with VerdictStore(tmp_path / "v.sqlite", user="ana") as store:
        calls = []
        original = VerdictStore._write

        def failing(self, c, key, *args, **kwargs):
            calls.append(key)
            if len(calls) == 2:
                raise sqlite3.OperationalError("disk I/O error")
            return original(self, c, key, *args, **kwargs)

        monkeypatch.setattr(VerdictStore, "_write", failing)
        with pytest.raises(sqlite3.OperationalError):
            store.set_verdicts(["k1", "k2", "k3"], "anomaly")
        monkeypatch.undo()
        assert store.all() == {} and store.audit() == []
        with pytest.raises(AnomalyDeskError):
            store.set_verdicts(["k1"], "perhaps")


# -- damaged store ----------------------------------------------------------------------------------
@pytest.fixture()
def damaged(tmp_path):
    path = tmp_path / "v.sqlite"
    with VerdictStore(path, user="ana") as store:
        for i in range(0, 1500, 50):
            store.set_verdicts([f"r{j}" for j in range(i, i + 50)], "anomaly", note="x" * 60)
    raw = bytearray(path.read_bytes())
    assert len(raw) > 40 * 4096
    middle = (len(raw) // 2) // 4096 * 4096
    raw[middle:middle + 4096] = os.urandom(4096)
    path.write_bytes(bytes(raw))
    return path


def test_a_damaged_store_is_refused_untouched_with_the_way_to_recover(damaged):
    before, files = _digest(damaged), _siblings(damaged)
    for read_only in (False, True):
        with pytest.raises(DamagedStoreError, match="salvage-verdicts") as info:
            VerdictStore(damaged, user="ana", read_only=read_only)
        assert "\n" not in str(info.value)
    assert _digest(damaged) == before and _siblings(damaged) == files


def test_salvage_exports_what_can_be_read_and_it_imports_into_a_new_store(damaged, tmp_path):
    before = _digest(damaged)
    result = salvage_store(damaged, tmp_path)
    assert _digest(damaged) == before
    assert 0 < result.verdicts <= 1500 and result.audit_entries > 0
    with VerdictStore(tmp_path / "fresh.sqlite", user="ana") as fresh:
        assert fresh.import_csv(result.verdicts_csv) == result.verdicts
        assert fresh.get(next(iter(fresh.all()))).verdict == "anomaly"
    assert result.audit_csv.read_text(encoding="utf-8").startswith("id,key,action")


def test_a_store_damaged_while_open_stops_taking_verdicts(tmp_path):
    """SQLite reports damage found mid-write as a raw DatabaseError: it becomes the located message
    with the way to recover, and the store takes no more verdicts."""
    store = VerdictStore(tmp_path / "v.sqlite", user="ana")
    real = store._conn

    class Damaged:  # the connection as it behaves once a page it needs is garbage
        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO verdicts"):
                raise sqlite3.DatabaseError("database disk image is malformed")
            return real.execute(sql, *args)

        def close(self):
            real.close()

    store._conn = Damaged()
    try:
        with pytest.raises(DamagedStoreError, match="salvage-verdicts"):
            store.set_verdict("k", "anomaly")
        with pytest.raises(AnomalyDeskError, match="read-only"):
            store.set_verdict("other", "normal")
        assert store.all() == {}  # the failed write was rolled back
    finally:
        store.close()
