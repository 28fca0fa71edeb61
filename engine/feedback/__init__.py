"""The feedback loop: stable record keys (``keys``), the verdict store (``store``), retraining with
verdicts (``rerank``, over the detector ``views``) and what to review next (``next_batch``). The GUI,
the session and ``simulate-review`` use exactly these names."""

from engine.feedback.keys import content_hashes, default_keys, record_keys
from engine.feedback.rerank import (
    RERANK_DEFAULTS,
    FeedbackResult,
    FeedbackState,
    found_curve,
    next_batch,
    retrain_with_verdicts,
)
from engine.feedback.store import (
    DEFAULT_REASONS,
    VERDICTS,
    Attachment,
    AuditEntry,
    DamagedStoreError,
    NotAVerdictStore,
    SalvageResult,
    VerdictRecord,
    VerdictStore,
    salvage_store,
)

__all__ = ["DEFAULT_REASONS", "RERANK_DEFAULTS", "VERDICTS", "Attachment", "AuditEntry", "DamagedStoreError",
           "FeedbackResult", "FeedbackState", "NotAVerdictStore", "SalvageResult", "VerdictRecord", "VerdictStore",
           "content_hashes", "default_keys", "found_curve", "next_batch", "record_keys", "retrain_with_verdicts",
           "salvage_store"]
