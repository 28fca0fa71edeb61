"""The Session owns the analyst's state: driven headless, as the GUI's views and the CLI drive it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.detectors import DETECTOR_NAMES
from engine.errors import AnomalyDeskError, SchemaMismatchError
from engine.session import VERDICT_FROM_RETRAIN, Session

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = {"auto": {"epochs": 2}, "autoencoder": {"epochs": 2}, "vae": {"epochs": 2}, "bigan": {"epochs": 2},
        "sequence_ae": {"epochs": 2, "window": 8}, "iforest": {"n_estimators": 30}}


def _ledger(path: Path, n: int = 240, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "entry_id": [f"JE-{i:05d}" for i in range(n)],
        "amount": np.round(rng.lognormal(6, 0.5, n), 2),
        "hours": rng.normal(12, 2, n).round(1),
        "account": rng.choice(["4000", "5000", "6000"], n),
        "label": ["regular"] * n,
    })
    bad = rng.choice(n, 12, replace=False)
    frame.loc[bad, "amount"] *= 40
    frame.loc[bad, "label"] = "global"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    s = Session(user="tester")
    yield s
    s.close()


@pytest.fixture
def ledger(tmp_path):
    return _ledger(tmp_path / "ledger.csv")


def _review_top(s: Session, k: int = 16) -> dict:
    labels = pd.read_csv(s.loaded.path)["label"].to_numpy()
    given = {}
    for i, r in enumerate(np.argsort(-s.scores, kind="stable")[:k]):
        v = "normal" if labels[r] == "regular" else "anomaly"
        note = f"note {i}" if i % 3 == 0 else None
        reason = "confirmed fraud" if i % 4 == 1 else None
        s.verdict(s.keys[r], v, note=note, reason=reason)
        given[str(s.keys[r])] = (v, note, reason)
    return given


def _snapshot(s: Session) -> dict:
    return {"scores": s.scores.copy(), "severity": s.severity.copy(), "flagged": s.flagged.copy(),
            "threshold": s.threshold, "rule": s.threshold_rule, "verdicts": s.verdicts}


def _same(a: dict, b: dict) -> None:
    np.testing.assert_allclose(b["scores"], a["scores"], rtol=1e-9)
    np.testing.assert_allclose(b["severity"], a["severity"], rtol=1e-9)
    assert np.array_equal(b["flagged"], a["flagged"])
    assert b["threshold"] == pytest.approx(a["threshold"], abs=1e-12)
    assert b["rule"] == a["rule"]
    strip = {k: {f: v[f] for f in ("verdict", "note", "reason")} for k, v in a["verdicts"].items()}
    assert {k: {f: v[f] for f in ("verdict", "note", "reason")} for k, v in b["verdicts"].items()} == strip


@pytest.mark.parametrize("detector", DETECTOR_NAMES)
def test_a_saved_session_reopens_exactly_after_training_and_after_retraining(detector, session, ledger, tmp_path):
    s = session
    s.load(ledger)
    s.train(detector=detector, seed=0, **FAST.get(detector, {}))
    s.set_threshold("percentile", share=0.05)
    trained = _snapshot(s)
    s.save(tmp_path / "trained.adproj")
    _same(trained, _snapshot(Session.open(tmp_path / "trained.adproj")))

    given = _review_top(s)
    s.retrain()
    after = _snapshot(s)
    assert not np.allclose(after["scores"], trained["scores"])
    assert np.array_equal(after["flagged"], after["scores"] >= after["threshold"])
    s.save(tmp_path / "case.adproj")
    r = Session.open(tmp_path / "case.adproj")
    _same(after, _snapshot(r))
    for key, (v, note, reason) in given.items():
        got = r.verdicts[key]
        assert (got["verdict"], got["note"], got["reason"]) == (v, note, reason)
    assert r.retrained and r.last_retrain == s.last_retrain
    r.close()


def test_retraining_keeps_the_rule_in_force_and_offers_a_suggestion(session, ledger):
    s = session
    s.load(ledger)
    s.train(detector="iforest", seed=0, n_estimators=30)
    s.set_threshold("percentile", share=0.05)
    before = int(s.flagged.sum())
    _review_top(s)
    s.retrain()
    assert s.threshold_rule.method == "percentile" and s.threshold_rule.params == {"share": 0.05}
    assert int(s.flagged.sum()) == pytest.approx(before, abs=2)
    assert (s.last_retrain.flagged_before, s.last_retrain.flagged_after) == (before, int(s.flagged.sum()))
    assert s.suggestion is not None and s.suggestion.rule.method == "cost"
    s.apply_suggestion()
    assert s.threshold_rule.method == "cost"
    assert s.suggestion is None


def test_a_manual_threshold_keeps_its_count_when_the_scores_change_scale(session, ledger):
    s = session
    s.load(ledger)
    s.train(detector="iforest", seed=0, n_estimators=30)
    s.set_threshold("manual", value=float(np.sort(s.scores)[-20]))
    assert int(s.flagged.sum()) == 20
    _review_top(s)
    s.retrain()
    assert s.threshold_rule.method == "manual" and int(s.flagged.sum()) == 20
    s.verdict(s.keys[np.argsort(-s.scores)[30]], "anomaly")
    s.retrain()  # a second retrain changes the scale again
    assert s.threshold_rule.method == "manual" and int(s.flagged.sum()) == 20


def test_loading_a_file_resets_every_per_file_state(session, ledger, tmp_path):
    s = session
    s.load(ledger, reference=ledger)
    assert s.reference == str(ledger)
    s.train(detector="iforest", seed=0, n_estimators=30)
    _review_top(s, 4)
    s.retrain()
    other = tmp_path / "other.csv"
    pd.DataFrame({"x1": np.arange(50.0), "x2": np.arange(50.0) ** 2}).to_csv(other, index=False)
    s.load(other)
    assert s.reference is None and s.scores is None and s.model is None and s.verdicts == {}
    assert s.last_retrain is None and s.suggestion is None and s.threshold is None
    assert s.threshold_rule.method == "default"


def test_a_reference_file_without_the_columns_is_refused_by_name(session, ledger, tmp_path):
    ref = tmp_path / "known_good.csv"
    pd.DataFrame({"x1": [1.0, 2.0]}).to_csv(ref, index=False)
    session.load(ledger)
    with pytest.raises(SchemaMismatchError, match="known_good.csv"):
        session.set_reference(ref)
    assert session.reference is None


def test_a_reason_belongs_to_one_record(session, ledger):
    s = session
    s.load(ledger)
    k = [str(x) for x in s.keys[:4]]
    s.verdict(k[0], "anomaly", note="first")
    s.set_reason(k[0], "duplicate")  # an already reviewed record: saved at once
    assert s.verdicts[k[0]] == {**s.verdicts[k[0]], "verdict": "anomaly", "note": "first", "reason": "duplicate"}
    s.verdict(k[1], "normal")  # the next verdict is not stamped with it
    assert s.verdicts[k[1]]["reason"] is None
    s.set_reason(k[2], "policy breach")  # chosen before the verdict: kept for that record only
    s.verdict(k[3], "anomaly")
    s.verdict(k[2], "anomaly")
    assert s.verdicts[k[3]]["reason"] is None and s.verdicts[k[2]]["reason"] == "policy breach"
    s.verdict(k[0], "unsure")  # a new verdict keeps the record's note and reason
    assert (s.verdicts[k[0]]["note"], s.verdicts[k[0]]["reason"]) == ("first", "duplicate")


def test_a_list_of_keys_is_one_batch(session, ledger):
    session.load(ledger)
    keys = [str(k) for k in session.keys[:5]]
    session.verdict(keys, "unsure", note="batch")
    assert [session.verdicts[k]["verdict"] for k in keys] == ["unsure"] * 5


def test_one_score_severity_and_threshold_in_force_after_a_retrain(session, ledger):
    from engine.reports import make_report_context
    from engine.scoring.severity import severity

    s = session
    s.load(ledger)
    s.train(detector="iforest", seed=0, n_estimators=30)
    _review_top(s)
    s.retrain()
    np.testing.assert_allclose(s.severity, severity(s.scores, np.sort(s.scores)))
    res = s.score_result()
    assert res.scores is s.scores and res.columns[-1] == VERDICT_FROM_RETRAIN
    np.testing.assert_allclose(res.contributions.sum(axis=1), 1.0)
    assert res.contributions.shape == (len(s.scores), len(res.columns))
    with pytest.raises(AnomalyDeskError, match="Retrain with verdicts"):
        s.what_if(0, {"amount": 1.0})
    ctx = make_report_context(s.frame, s.schema, res, keys=[str(k) for k in s.keys], verdicts=s.store.all(),
                              threshold=s.threshold, threshold_method=s.threshold_info.explanation, file=s.loaded.path)
    assert ctx.threshold == s.threshold


def test_threshold_method_names_have_one_home():
    from engine import project, thresholds

    assert tuple(thresholds.METHODS) == project.THRESHOLD_METHODS
    s = np.r_[np.zeros(50), np.arange(1.0, 11.0)]
    y = s > 5
    assert thresholds.automatic_threshold(s).method in thresholds.METHODS
    assert thresholds.min_cost_threshold(s, y, cost_missed=10, cost_review=1).method == "cost"


def test_importing_the_session_imports_no_qt():
    code = ("import sys, engine.session; bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', "
            "'ui'))]; print(bad); sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_a_project_belongs_to_its_data_file(session, ledger, tmp_path):
    session.load(ledger)
    session.save(tmp_path / "first.adproj")
    assert session.project_is_for_this_file(tmp_path / "first.adproj")
    other = _ledger(tmp_path / "other.csv", seed=1)
    session.load(other)
    assert session.project_path is None  # another file: Save goes to Save As
    assert not session.project_is_for_this_file(tmp_path / "first.adproj")


def test_training_saving_and_thresholds_mark_the_session_dirty(session, ledger, tmp_path):
    seen = []
    session.events.connect("dirty", lambda: seen.append(session.dirty))
    session.load(ledger)
    assert not session.dirty
    session.train(detector="iforest", seed=0, n_estimators=20)
    assert session.dirty
    session.save(tmp_path / "p.adproj")
    assert not session.dirty
    session.set_threshold("percentile", share=0.1)
    assert session.dirty and seen == [True, False, True]


def test_undo_takes_back_a_whole_bulk_verdict(session, ledger):
    s = session
    s.load(ledger)
    keys = [str(k) for k in s.keys[:5]]
    s.verdict(keys, "normal", note="bulk")
    s.undo()
    assert sorted(e.key for e in s.last_undone) == sorted(keys)
    assert all((s.verdicts.get(k) or {}).get("verdict") is None for k in keys)


def test_a_rule_takes_its_records_out_of_the_flagged_queue_and_round_trips(session, ledger, tmp_path):
    from engine.rules import Condition, Rule

    s = session
    s.load(ledger)
    s.train(detector="iforest", seed=0, n_estimators=30)
    top = int(np.argmax(s.scores))
    assert s.flagged[top]
    rule = s.propose_rule(top)
    assert rule.conditions and rule.source_key == str(s.keys[top])
    account = str(s.frame["account"].iat[top])
    s.add_rule(Rule(name="normal account", conditions=(Condition("account", "equals", account),)))
    covered = (s.frame["account"].astype(str) == account).to_numpy()
    np.testing.assert_array_equal(s.ruled, covered)
    np.testing.assert_array_equal(s.flagged, (s.scores >= s.threshold) & ~covered)
    assert not s.flagged[top]
    assert s.rule_counts() == {"normal account": int(covered.sum())}
    with pytest.raises(AnomalyDeskError):
        s.add_rule(Rule(name="normal account", conditions=(Condition("hours", "at_most", 5.0),)))
    s.save(tmp_path / "case.adproj")
    r = Session.open(tmp_path / "case.adproj", user="tester")
    try:
        assert [x.to_dict() for x in r.rules] == [x.to_dict() for x in s.rules]
        np.testing.assert_array_equal(r.flagged, s.flagged)
        r.remove_rule("normal account")
        assert r.rules == [] and r.dirty
        np.testing.assert_array_equal(r.flagged, r.scores >= r.threshold)
    finally:
        r.close()


def test_set_user_changes_the_reviewer_of_the_next_verdicts_only(session, ledger):
    session.load(ledger)
    session.verdict(session.keys[0], "anomaly")
    session.set_user("someone else")
    session.verdict(session.keys[1], "normal")
    assert session.store.get(str(session.keys[0])).user == "tester"
    assert session.store.get(str(session.keys[1])).user == "someone else"


def test_next_batch_skips_reviewed_and_ruled_records_and_explores_a_cold_queue(session, ledger):
    """Before a retrain the next batch is the top of the queue; after ten normal verdicts and a retrain,
    half of it explores (the review loop's ``next_batch``); a verdict (unsure too) or a rule takes a
    record out of the next batch."""
    from engine.feedback.rerank import PICK_EXPLORE
    from engine.rules import Condition, Rule

    s = session
    s.load(ledger)
    s.train(detector="iforest", seed=0, n_estimators=30)
    s.set_note(s.keys[int(np.argmax(s.scores))], "looks odd, check tomorrow")  # a note is not a verdict
    first = s.next_batch(10)
    np.testing.assert_array_equal(first.records, np.argsort(-s.scores, kind="stable")[:10])
    assert first.explored == 0 and first.text == "the next 10 to review"
    s.verdict([s.keys[r] for r in first.records], "normal")  # the analyst finds nothing in the top ten
    s.retrain()
    batch = s.next_batch(10)
    assert len(batch.records) == 10 and not np.isin(batch.records, first.records).any()
    assert batch.explored == 5 and "5 exploring other detectors and regions" in batch.text
    assert int((s.feedback_state.picked[batch.records] & PICK_EXPLORE > 0).sum()) == 5
    s.verdict(s.keys[batch.records[0]], "unsure")
    account = str(s.frame["account"].iat[int(batch.records[1])])
    s.add_rule(Rule(name="normal account", conditions=(Condition("account", "equals", account),)))
    again = s.next_batch(10).records
    assert batch.records[0] not in again and not s.ruled[again].any()
