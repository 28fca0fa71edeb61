"""Issue 7 crash safety: a review process is SIGKILLed at random points, again and again; every
verdict it acknowledged, and the audit trail, must be intact after each restart."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.feedback import VerdictStore

REPO_ROOT = Path(__file__).resolve().parents[2]

# A review session: reopens the project, then gives verdicts, edits notes and undoes at random.
# It prints "BEGIN op" before an operation and "ACK op key new_verdict" once it returned (committed).
_REVIEWER = r"""
import random, sys
from engine.feedback import VerdictStore
path, run, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
store = VerdictStore(path, user=f"run{run}")
print("READY", flush=True)
last = None
for i in range(100_000):
    op = rng.choice(["set", "set", "set", "note", "undo"]) if last else "set"
    print(f"BEGIN {op}", flush=True)
    if op == "set":
        key = f"r{run}-{i}"
        v = rng.choice(["anomaly", "normal", "unsure"])
        store.set_verdict(key, v, note=f"n{i}", reason="duplicate" if v == "anomaly" else "")
        print(f"ACK set {key} {v}", flush=True)
        last = key
    elif op == "note":
        rec = store.set_note(last, f"edited {i}")
        print(f"ACK note {last} {rec.verdict}", flush=True)
    else:
        entry = store.undo()
        print(f"ACK undo {entry.key if entry else '-'} {entry.old if entry else '-'}", flush=True)
"""


@pytest.mark.slow
def test_sigkill_loop_keeps_every_acknowledged_verdict_and_the_audit_trail(tmp_path):
    path = tmp_path / "review.verdicts.sqlite"
    rng = random.Random(20261126)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    expected: dict[str, str | None] = {}  # key -> verdict after every acknowledged change
    acked_trail: list[tuple[str, str]] = []  # (action, key) of every acknowledged audit entry
    runs = 24
    for run in range(runs):
        proc = subprocess.Popen([sys.executable, "-c", _REVIEWER, str(path), str(run), str(rng.randrange(10**6))],
                                cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout.readline().strip() == "READY"
        kill_after = rng.randrange(0, 40)  # acknowledgements before the kill
        kill_mid_op = rng.random() < 0.5  # kill right after a BEGIN (mid-operation) or right after an ACK
        acks = 0

        def acknowledge(line: str) -> None:
            _, op, key, verdict = line.split()
            if key != "-":
                expected[key] = None if verdict == "None" else verdict
                acked_trail.append((op, key))

        for line in proc.stdout:
            if line.startswith("BEGIN"):
                if acks >= kill_after and kill_mid_op:
                    break
                continue
            acknowledge(line)
            acks += 1
            if acks >= kill_after and not kill_mid_op:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # the reviewer may have run ahead before the signal landed: what it acknowledged in the
        # meantime is still in the pipe, and counts as acknowledged too
        for line in proc.stdout:
            if line.startswith("ACK"):
                acknowledge(line)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL

        with VerdictStore(path) as store:  # restart: the project reopens
            audit = store.audit()
            # every acknowledged change is in the trail, in order; at most one more (the operation
            # in flight when the process died may have committed before its acknowledgement)
            assert [(e.action, e.key) for e in audit[: len(acked_trail)]] == acked_trail, f"run {run}"
            assert len(audit) - len(acked_trail) in (0, 1), f"run {run}"
            if len(audit) > len(acked_trail):
                extra = audit[-1]
                expected[extra.key] = extra.new
                acked_trail.append((extra.action, extra.key))
            records = store.all()
            assert {k: r.verdict for k, r in records.items() if r.verdict is not None} == {
                k: v for k, v in expected.items() if v is not None}, f"run {run}: verdicts lost or changed"
            for e in audit:
                assert e.user.startswith("run") and e.time
    assert len(acked_trail) > 100  # the loop really exercised the store
