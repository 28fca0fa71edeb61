"""Verdict store (durability, audit, undo, reasons, CSV, re-attachment), record keys, and the
retrain-with-verdicts path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import AnomalyDeskError, Cancelled, DataError
from engine.feedback import (
    DEFAULT_REASONS,
    FeedbackResult,
    VerdictStore,
    record_keys,
    retrain_with_verdicts,
)
from engine.io import infer_schema
from engine.pipeline import AnomalyModel

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path):
    s = VerdictStore(tmp_path / "project.verdicts.sqlite", user="alice")
    yield s
    s.close()


def _ledger(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "doc": [f"D{i:05d}" for i in range(n)],
        "amount": rng.gamma(2.0, 50.0, n).round(2),
        "account": rng.choice(["A", "B", "C"], n),
        "qty": rng.integers(1, 5, n),
    })


# -- record keys -------------------------------------------------------------------------------
def test_identifier_keys_are_the_identifier_values():
    frame = _ledger()
    keys = record_keys(frame, infer_schema(frame))
    assert list(keys[:3]) == ["D00000", "D00001", "D00002"]


def test_content_keys_survive_a_reexported_reordered_copy(tmp_path):
    frame = _ledger().drop(columns="doc")
    frame["qty"] = frame["qty"].astype(float)  # the copy will write 2.0 where the original has 2
    schema = infer_schema(frame)
    keys = record_keys(frame, schema)
    assert len(set(keys)) == len(keys)
    assert all(k.startswith("#") for k in keys)
    # re-export: rows shuffled, columns reordered, through a CSV file
    copy_path = tmp_path / "copy.csv"
    perm = np.random.default_rng(1).permutation(len(frame))
    frame.iloc[perm][["qty", "account", "amount"]].to_csv(copy_path, index=False)
    copy = pd.read_csv(copy_path)
    copy_keys = record_keys(copy, infer_schema(copy))
    hashes = {k.split(":")[1] for k in keys}
    assert {k.split(":")[1] for k in copy_keys} == hashes


def test_verdicts_reattach_after_reload_and_orphans_are_reported(store, tmp_path):
    frame = _ledger().drop(columns="doc")
    schema = infer_schema(frame)
    keys = record_keys(frame, schema)
    store.set_verdict(keys[3], "anomaly", note="odd amount")
    store.set_verdict(keys[10], "normal")
    # a re-exported copy: reordered, and row 10 is gone
    perm = [i for i in np.random.default_rng(2).permutation(len(frame)) if i != 10]
    copy = frame.iloc[perm].reset_index(drop=True)
    matched, orphans = store.attach(record_keys(copy, schema))
    new_pos_of_3 = perm.index(3)
    assert set(matched) == {new_pos_of_3}
    assert matched[new_pos_of_3].verdict == "anomaly" and matched[new_pos_of_3].note == "odd amount"
    assert orphans == [keys[10]]
    # the orphan is reported, never dropped
    assert store.get(keys[10]).verdict == "normal"


def test_identifier_keys_reattach_and_report_orphans(store):
    frame = _ledger()
    schema = infer_schema(frame)
    store.set_verdict("D00007", "anomaly")
    store.set_verdict("GONE-1", "normal")
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    matched, orphans = store.attach(record_keys(shuffled, schema))
    (row, rec), = matched.items()
    assert shuffled.loc[row, "doc"] == "D00007" and rec.verdict == "anomaly"
    assert orphans == ["GONE-1"]


def test_duplicate_rows_get_distinct_keys_and_both_reattach(store):
    frame = pd.DataFrame({"x": [1.0, 2.0, 1.0, 3.0], "y": ["a", "b", "a", "c"]})
    schema = infer_schema(frame)
    keys = record_keys(frame, schema)
    assert keys[0] != keys[2] and keys[0].split(":")[1] == keys[2].split(":")[1]
    store.set_verdict(keys[0], "anomaly")
    store.set_verdict(keys[2], "normal")
    moved = frame.iloc[[1, 0, 3, 2]].reset_index(drop=True)
    matched, orphans = store.attach(record_keys(moved, schema))
    assert orphans == [] and len(matched) == 2
    assert sorted(r.verdict for r in matched.values()) == ["anomaly", "normal"]


# -- store -------------------------------------------------------------------------------------
def test_set_get_all_and_validation(store):
    rec = store.set_verdict("r1", "anomaly", note="n", reason="duplicate")
    assert (rec.verdict, rec.note, rec.reason, rec.user) == ("anomaly", "n", "duplicate", "alice")
    store.set_verdict("r2", "Normal")
    assert store.get("r2").verdict == "normal"
    assert store.get("nope") is None
    assert set(store.all()) == {"r1", "r2"}
    with pytest.raises(AnomalyDeskError):
        store.set_verdict("r3", "maybe")
    assert store.get("r3") is None


def test_wal_mode_and_full_sync(store):
    mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = store._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == "wal" and sync == 2  # 2 = FULL


def test_audit_trail_and_undo(store):
    store.set_verdict("r1", "anomaly", reason="duplicate")
    store.set_verdict("r1", "normal", note="checked with the vendor")
    store.set_note("r1", "checked twice")
    trail = store.audit()
    assert [(e.key, e.old, e.new, e.action) for e in trail] == [
        ("r1", None, "anomaly", "set"), ("r1", "anomaly", "normal", "set"), ("r1", "normal", "normal", "note")]
    assert trail[1].note == "checked with the vendor" and trail[0].user == "alice" and trail[0].time

    undone = store.undo()  # the note change
    assert undone.action == "note" and store.get("r1").note == "checked with the vendor"
    undone = store.undo()  # back to anomaly
    assert (undone.old, undone.new) == ("anomaly", "normal")
    assert store.get("r1").verdict == "anomaly" and store.get("r1").reason == "duplicate"
    undone = store.undo()  # the first verdict: the record goes away
    assert store.get("r1") is None
    assert store.undo() is None
    assert [e.action for e in store.audit()][-3:] == ["undo", "undo", "undo"]


def test_undo_survives_reopen(tmp_path):
    path = tmp_path / "v.sqlite"
    with VerdictStore(path, user="bob") as s:
        s.set_verdict("a", "anomaly")
        s.set_verdict("b", "normal")
    with VerdictStore(path, user="bob") as s:  # undo takes back one's own actions only
        assert s.undo().key == "b"
        assert set(s.all()) == {"a"}


def test_reason_codes_have_defaults_and_are_editable(store):
    assert store.reasons() == list(DEFAULT_REASONS)
    store.add_reason("vendor master change")
    store.remove_reason("duplicate")
    assert store.reasons()[-1] == "vendor master change" and "duplicate" not in store.reasons()
    with pytest.raises(AnomalyDeskError):
        store.add_reason("  ")


def test_csv_round_trip(store, tmp_path):
    store.set_verdict("r1", "anomaly", note='says "refund", twice\nsecond line', reason="duplicate")
    store.set_verdict("r2", "unsure")
    store.set_verdict("r3", "normal", note="ünïcode ✓")
    out = tmp_path / "verdicts.csv"
    assert store.export_csv(out) == 3
    assert out.read_text(encoding="utf-8").splitlines()[0] == "key,verdict,note,reason,user,time"
    with VerdictStore(tmp_path / "other.sqlite", user="carol") as other:
        assert other.import_csv(out) == 3
        assert other.all() == store.all()  # users and times kept
        assert other.import_csv(out) == 0  # idempotent
        assert {e.action for e in other.audit()} == {"import"}


def test_import_rejects_bad_rows_naming_row_and_column(store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("key,verdict\nr1,anomaly\nr2,perhaps\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        store.import_csv(bad)
    assert err.value.row == 3 and err.value.column == "verdict"
    assert store.all() == {}  # nothing applied half-way


def test_not_a_database_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(AnomalyDeskError):
        VerdictStore(junk)


def test_two_threads_write_without_losing_verdicts(store):
    def worker(prefix: str) -> None:
        for i in range(40):
            store.set_verdict(f"{prefix}{i}", "normal" if i % 2 else "anomaly")

    threads = [threading.Thread(target=worker, args=(p,)) for p in ("gui-", "worker-")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.all()) == 80 and len(store.audit()) == 80


_CHILD = r"""
import sys
from engine.feedback import VerdictStore
store = VerdictStore(sys.argv[1], user="child")
for i in range(10_000):
    store.set_verdict(f"k{i}", "anomaly" if i % 3 == 0 else "normal", note=f"note {i}")
    print(f"ACK k{i}", flush=True)
"""


def test_acknowledged_verdicts_survive_sigkill(tmp_path):
    path = tmp_path / "v.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    acked = []
    for line in proc.stdout:
        acked.append(line.split()[1])
        if len(acked) == 25:
            proc.send_signal(signal.SIGKILL)  # right after the 25th acknowledgement
            break
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with VerdictStore(path) as s:
        records = s.all()
        for i, key in enumerate(acked):
            assert records[key].verdict == ("anomaly" if i % 3 == 0 else "normal")
            assert records[key].note == f"note {i}"
        assert len(s.audit()) == len(records)


# -- retraining with verdicts ------------------------------------------------------------------
def _hidden_cluster(seed: int = 0):
    """Normals in a Gaussian cloud, some legitimately extreme normals scattered far out, and a tight
    anomaly cluster that is only moderately far: the static ranking is led by the extreme normals."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(0, 1, (1500, 4))
    extreme_normals = rng.normal(0, 1, (60, 4)) * np.array([6.0, 1, 1, 1])
    anomalies = rng.normal([2.8, 2.8, 0, 0], 0.15, (30, 4))
    X = np.vstack([normal, extreme_normals, anomalies])
    y = np.r_[np.zeros(1560, bool), np.ones(30, bool)]
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    return frame, infer_schema(frame), y


def test_retrain_lifts_records_near_confirmed_anomalies():
    frame, schema, y = _hidden_cluster()
    model = AnomalyModel(detector="iforest", seed=0).fit(frame, schema)
    first = retrain_with_verdicts(model, frame, schema, {})
    base_rank = np.argsort(np.argsort(-first.scores))
    anomalies = np.flatnonzero(y)
    # give verdicts on 3 of the cluster and on the 10 top-ranked normals
    top_normals = [i for i in np.argsort(-first.scores) if not y[i]][:10]
    verdicts = {int(i): "anomaly" for i in anomalies[:3]} | {int(i): "normal" for i in top_normals}
    verdicts[int(anomalies[5])] = "unsure"  # ignored
    result = retrain_with_verdicts(model, frame, schema, verdicts, state=first.state)
    assert isinstance(result, FeedbackResult)
    assert (result.n_anomalies, result.n_normals) == (3, 10)
    new_rank = np.argsort(np.argsort(-result.scores))
    others = anomalies[3:]
    assert np.median(new_rank[others]) < np.median(base_rank[others]) / 2
    assert np.mean(new_rank[top_normals]) > np.mean(base_rank[top_normals])
    assert result.state.nodes is first.state.nodes  # warm start: region forest reused
    n = len(result.scores)  # percentiles among all rows (engine.scoring.severity: ties count half)
    assert result.severity.min() == pytest.approx(50.0 / n) and result.severity.max() == pytest.approx(100.0 - 50.0 / n)
    assert np.isfinite(result.threshold) and "F1" in result.threshold_explanation


def test_retrain_fits_an_unfitted_model_without_confirmed_anomalies():
    frame, schema, y = _hidden_cluster()
    seen = {}

    class Recording(AnomalyModel):
        def fit(self, frame, schema, progress=None, should_stop=None, sample_weight=None):
            seen["weight"] = sample_weight
            return super().fit(frame, schema, progress, should_stop, sample_weight)

    anomalies = np.flatnonzero(y)[:4]
    result = retrain_with_verdicts(Recording(detector="iforest"), frame, schema,
                                   {int(i): "anomaly" for i in anomalies} | {0: "normal"})
    assert result.refitted
    w = seen["weight"]
    assert (w[anomalies] == 0).all() and w[0] > 1 and w[1] == 1


def test_retrain_cost_threshold_cancel_and_bad_rows():
    frame, schema, y = _hidden_cluster()
    model = AnomalyModel(detector="iforest").fit(frame, schema)
    verdicts = {int(i): ("anomaly" if y[i] else "normal") for i in range(1540, 1590)}
    cheap = retrain_with_verdicts(model, frame, schema, verdicts, cost_missed=1000.0, cost_review=1.0)
    dear = retrain_with_verdicts(model, frame, schema, verdicts, cost_missed=1.0, cost_review=1000.0)
    assert cheap.threshold <= dear.threshold and "cost" in cheap.threshold_explanation
    with pytest.raises(Cancelled):
        retrain_with_verdicts(model, frame, schema, verdicts, should_stop=lambda: True)
    with pytest.raises(AnomalyDeskError):
        retrain_with_verdicts(model, frame, schema, {len(frame) + 5: "anomaly"})


def test_column_profile_lifts_records_unusual_in_the_same_way():
    """Records whose company/account pair is never seen elsewhere: confirming two of them lifts the
    others (the per-pair rarity weight rises), whatever the one-hot width."""
    from engine.feedback.rerank import _column_profile

    rng = np.random.default_rng(3)
    n = 3000
    template = rng.integers(0, 40, n)
    frame = pd.DataFrame({"company": [f"C{t}" for t in template], "account": [f"A{t}" for t in template],
                          "desk": [f"D{t % 7}" for t in template], "amount": rng.gamma(2.0, 10.0, n)})
    odd = np.arange(100, 3000, 150)  # 20 rows: common company, common account, never together
    frame.loc[odd, "account"] = [f"A{(template[i] + 1 + i % 5) % 40}" for i in odd]
    frame.loc[rng.choice(n, 40, replace=False), "amount"] *= 30  # extreme but normal amounts lead
    schema = infer_schema(frame)
    model = AnomalyModel(detector="iforest", seed=0).fit(frame, schema)
    fm = model.transform(frame)
    profile = _column_profile(frame, schema, fm)
    assert profile is not None and profile.shape[0] == n and np.isfinite(profile).all()
    assert profile.shape[1] < 20  # a few dozen columns at most, not one per level
    scored = model.score(frame)
    with_shares = _column_profile(frame, schema, fm, contributions=scored.contributions,
                                  base_z=scored.scores)
    assert with_shares.shape[1] == profile.shape[1] + scored.contributions.shape[1]
    assert with_shares.min() >= 0 and with_shares.max() <= 5
    first = retrain_with_verdicts(model, frame, schema, {})
    top_normals = [int(i) for i in np.argsort(-first.scores) if i not in set(odd)][:20]
    verdicts = {int(odd[0]): "anomaly", int(odd[1]): "anomaly"} | {i: "normal" for i in top_normals}
    result = retrain_with_verdicts(model, frame, schema, verdicts, state=first.state)
    before = np.argsort(np.argsort(-first.scores))[odd[2:]]
    after = np.argsort(np.argsort(-result.scores))[odd[2:]]
    assert np.median(after) < np.median(before) / 3
    weights = result.state.profile_weights
    assert weights is not None and weights.max() > 0 and weights.min() >= 0  # rarity only lifts


def test_a_few_verdicts_from_the_top_do_not_unflag_the_rest_of_the_queue():
    """Two confirmed anomalies and one normal, all at the top of the ranking: the best cut on those three
    alone would flag only the two anomalies. The default rule's cut stays (it flags more), saying why;
    once the records between the two cuts have been reviewed, the verdicts set the threshold."""
    from engine import thresholds

    frame, schema, y = _hidden_cluster()
    model = AnomalyModel(detector="iforest").fit(frame, schema)
    order = np.argsort(-model.score(frame).scores)
    few = {int(order[0]): "anomaly", int(order[1]): "anomaly", int(order[2]): "normal"}
    result = retrain_with_verdicts(model, frame, schema, few)
    default = thresholds.default_threshold(result.scores)
    assert result.threshold == pytest.approx(default.value)
    assert (result.scores >= result.threshold).sum() > 2
    assert "the verdicts say nothing about them" in result.threshold_explanation
    # reviews that reach far down the ranking: the verdicts decide
    many = {int(i): ("anomaly" if y[i] else "normal") for i in order[: len(order) // 2]}
    deep = retrain_with_verdicts(model, frame, schema, many)
    assert "F1" in deep.threshold_explanation and "Kept" not in deep.threshold_explanation
