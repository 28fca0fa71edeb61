"""What the analyst gives the session: verdicts (one record or a batch), notes, reasons and rules.
A mixin of ``Session`` (engine.session.model), kept apart so each file holds one job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import AnomalyDeskError


class ReviewActions:
    """Verdicts, notes, reasons and rules; the state they change lives on the Session."""

    # ------------------------------------------------------------------------------------------
    # rules from verdicts (engine.rules)
    # ------------------------------------------------------------------------------------------
    def set_rules(self, rules) -> None:
        """The rules in force (engine.rules.Rule list); recomputes which rows they cover."""
        from engine.rules import matches

        self.rules = list(rules)
        frame = self.frame
        self.ruled = matches(self.rules, frame) if frame is not None else None
        self.events.emit("rules")

    def add_rule(self, rule) -> None:
        """Add a rule: the records it matches leave the flagged queue (they stay visible with a filter)."""
        from engine.rules import RuleError

        if any(r.name == rule.name for r in self.rules):
            raise RuleError(f"a rule named {rule.name!r} already exists")
        self.set_rules([*self.rules, rule])
        self._mark()

    def remove_rule(self, name: str) -> None:
        self.set_rules([r for r in self.rules if r.name != name])
        self._mark()

    def rule_counts(self) -> dict[str, int]:
        """Records each rule covers (a record matched by two rules counts for both)."""
        frame = self.frame
        return {r.name: int(r.mask(frame).sum()) if frame is not None else 0 for r in self.rules}

    def propose_rule(self, record: int):
        """A rule proposed from record ``record`` on its top contributing columns (engine.rules.propose_rule)."""
        from engine.rules import propose_rule

        if self.result is None:
            raise AnomalyDeskError("train a model first: a rule is proposed from what drove a record's score")
        shares = np.asarray(self.result.contributions)[record]
        return propose_rule(self.frame, self.schema, record, shares, list(self.result.columns),
                            key=str(self.keys[record]), author=self.user or "",
                            existing=[r.name for r in self.rules])

    # ------------------------------------------------------------------------------------------
    # verdicts
    # ------------------------------------------------------------------------------------------
    def _require_store(self):
        if self.store is None:
            raise AnomalyDeskError("verdicts are unavailable: no verdict database is open")
        return self.store

    def set_user(self, user: str) -> None:
        """Who gives the next verdicts (Settings' reviewer name); verdicts already given keep their reviewer."""
        self.user = user
        if self.store is not None:
            self.store.user = user

    def verdict(self, key_or_keys, verdict: str, note: str | None = None, reason: str | None = None) -> None:
        """Record a verdict for one key or a list of keys (one batch). ``note``/``reason`` None keep what the
        record already holds; "" clears it. A reason chosen earlier for that very record is used."""
        store = self._require_store()
        keys = [str(key_or_keys)] if isinstance(key_or_keys, (str, np.str_)) else [str(k) for k in key_or_keys]
        notes, reasons = [], []
        for key in keys:
            old = store.get(key)
            notes.append((old.note if old else "") if note is None else note)
            reasons.append(reason if reason is not None else
                           (old.reason if old else "") or self._pending_reasons.pop(key, ""))
        if len(keys) == 1:
            store.set_verdict(keys[0], verdict, note=notes[0], reason=reasons[0])
        elif keys:  # one transaction, one batch: a single undo takes it all back
            store.set_verdicts(keys, verdict, note=notes, reason=reasons)
        self._verdicts_changed()

    def set_reason(self, key: str, reason: str) -> None:
        """A reason belongs to one record: saved at once on a reviewed record, else kept for its verdict."""
        store = self._require_store()
        key = str(key)
        old = store.get(key)
        if old is not None and old.verdict:
            store.set_verdict(key, old.verdict, note=old.note, reason=reason or "")
        elif reason:
            self._pending_reasons[key] = reason
        else:
            self._pending_reasons.pop(key, None)
        self._verdicts_changed()

    def set_note(self, key: str, note: str) -> None:
        self._require_store().set_note(str(key), note)
        self._verdicts_changed()

    def undo(self):
        """Undo this user's last action (a bulk verdict is one action: its whole batch); returns the latest
        audit entry undone, or None. ``last_undone`` holds every entry it took back."""
        self.last_undone = self._require_store().undo_last_action()
        if self.last_undone:
            self._verdicts_changed()
        return self.last_undone[0] if self.last_undone else None

    def import_verdicts(self, path: str | Path) -> int:
        n = self._require_store().import_csv(path)
        self._verdicts_changed()
        return n

    def _verdicts_changed(self) -> None:
        self._matched = None
        self.events.emit("verdicts")

    def record(self, key: str):
        """The stored VerdictRecord of a key (or the pending reason of an unreviewed one), or None."""
        rec = self.store.get(str(key)) if self.store is not None else None
        return rec

    def pending_reason(self, key: str) -> str:
        return self._pending_reasons.get(str(key), "")

    @property
    def verdicts(self) -> dict[str, dict]:
        """``{key: {"verdict", "note", "reason", "user", "time"}}`` for every stored verdict of this file."""
        if self.store is None:
            return {}
        return {k: {"verdict": r.verdict, "note": r.note or None, "reason": r.reason or None,
                    "user": r.user, "time": r.time} for k, r in self.store.all().items()}

    def verdict_records_by_row(self) -> dict[int, Any]:
        """``{row: VerdictRecord}`` for the rows of the file (records re-attached by content)."""
        if self.store is None or self.keys is None:
            return {}
        if self._matched is None:
            self._matched = self.store.attach(self.keys)[0]
        return self._matched

    def verdicts_by_row(self) -> dict[int, str]:
        return {i: r.verdict for i, r in self.verdict_records_by_row().items() if r.verdict}
