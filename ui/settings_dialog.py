"""File > Settings…: who reviews (recorded with each verdict) and where big files are scored.

The values live in QSettings (``AppSettings`` reads and writes them with their defaults), so they are
set once per machine, not per project."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QSpinBox

KEY_REVIEWER = "reviewer/name"
KEY_CLUSTER = "cluster/address"
KEY_THRESHOLD_MB = "cluster/thresholdMB"
KEY_TOP_N = "cluster/topN"
DEFAULT_THRESHOLD_MB = 500
DEFAULT_TOP_N = 10_000


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return "analyst"


@dataclass
class AppSettings:
    reviewer: str
    cluster: str = ""  # "" = off; "local:N" or "tcp://host:8786"
    threshold_mb: int = DEFAULT_THRESHOLD_MB  # a file larger than this is scored on the cluster
    top_n: int = DEFAULT_TOP_N  # flagged records loaded into the queue after cluster scoring

    @classmethod
    def read(cls, settings: QSettings) -> AppSettings:
        def number(key, default):
            try:
                return int(settings.value(key, default))
            except (TypeError, ValueError):
                return default

        return cls(reviewer=str(settings.value(KEY_REVIEWER, "") or "").strip() or os_user(),
                   cluster=str(settings.value(KEY_CLUSTER, "") or "").strip(),
                   threshold_mb=number(KEY_THRESHOLD_MB, DEFAULT_THRESHOLD_MB),
                   top_n=number(KEY_TOP_N, DEFAULT_TOP_N))

    def write(self, settings: QSettings) -> None:
        settings.setValue(KEY_REVIEWER, self.reviewer)
        settings.setValue(KEY_CLUSTER, self.cluster)
        settings.setValue(KEY_THRESHOLD_MB, int(self.threshold_mb))
        settings.setValue(KEY_TOP_N, int(self.top_n))
        settings.sync()

    def uses_cluster_for(self, size_bytes: int) -> bool:
        return bool(self.cluster) and size_bytes > self.threshold_mb * (1 << 20)


def check_cluster_address(text: str) -> str | None:
    """None when ``text`` is empty or a form engine.scoring.cluster accepts, else what is wrong.
    The parsing is engine.scoring.cluster.parse_cluster's (imported lazily: dask is optional)."""
    if not text:
        return None
    from engine.scoring.cluster import parse_cluster

    try:
        parse_cluster(text)
    except Exception as exc:  # noqa: BLE001 - any refusal is shown under the field
        return str(exc)
    return None


class SettingsDialog(QDialog):
    def __init__(self, parent, values: AppSettings):
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.reviewer_edit = QLineEdit(values.reviewer)
        self.reviewer_edit.setObjectName("reviewerEdit")
        self.reviewer_edit.setToolTip("Recorded with every verdict you give (default: your login name).")
        self.cluster_edit = QLineEdit(values.cluster)
        self.cluster_edit.setObjectName("clusterEdit")
        self.cluster_edit.setPlaceholderText("off   (local:4 or tcp://host:8786)")
        self.cluster_edit.setToolTip("Dask cluster for scoring big files: local:N starts N worker processes on "
                                     "this machine; tcp://host:8786 uses a running scheduler. Empty: off.")
        self.threshold_spin = QSpinBox()
        self.threshold_spin.setRange(1, 10_000_000)
        self.threshold_spin.setSuffix(" MB")
        self.threshold_spin.setValue(values.threshold_mb)
        self.threshold_spin.setToolTip("A file larger than this is scored on the cluster (when one is set).")
        self.top_spin = QSpinBox()
        self.top_spin.setRange(100, 5_000_000)
        self.top_spin.setSingleStep(1000)
        self.top_spin.setValue(values.top_n)
        self.top_spin.setToolTip("After cluster scoring, the queue loads this many top-scored records.")
        self.problem = QLabel("")
        self.problem.setObjectName("settingsProblem")
        self.problem.setStyleSheet("color:#b00;")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept_if_valid)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Reviewer name", self.reviewer_edit)
        form.addRow("Cluster for big files", self.cluster_edit)
        form.addRow("Use the cluster for files over", self.threshold_spin)
        form.addRow("Records to review from a big file", self.top_spin)
        form.addRow(self.problem)
        form.addRow(self.buttons)
        self.resize(520, 220)

    def values(self) -> AppSettings:
        return AppSettings(reviewer=self.reviewer_edit.text().strip() or os_user(),
                           cluster=self.cluster_edit.text().strip(), threshold_mb=self.threshold_spin.value(),
                           top_n=self.top_spin.value())

    def _accept_if_valid(self) -> None:
        problem = check_cluster_address(self.cluster_edit.text().strip())
        self.problem.setText(f"Cluster address: {problem}" if problem else "")
        if problem is None:
            self.accept()


__all__ = ["AppSettings", "SettingsDialog", "check_cluster_address", "os_user"]
