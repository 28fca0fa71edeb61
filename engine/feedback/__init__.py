"""The feedback loop: stable record keys (``keys``), the verdict store (``store``) and retraining
with verdicts (``rerank``). The GUI, the session and ``simulate-review`` use exactly these names."""

from engine.feedback.keys import content_hashes, record_keys
from engine.feedback.rerank import RERANK_DEFAULTS, FeedbackResult, FeedbackState, retrain_with_verdicts
from engine.feedback.store import DEFAULT_REASONS, VERDICTS, AuditEntry, VerdictRecord, VerdictStore

__all__ = ["DEFAULT_REASONS", "RERANK_DEFAULTS", "VERDICTS", "AuditEntry", "FeedbackResult", "FeedbackState",
           "VerdictRecord", "VerdictStore", "content_hashes", "record_keys", "retrain_with_verdicts"]
