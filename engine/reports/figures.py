"""Report figures as PNG bytes. matplotlib's object API with the Agg canvas only: no pyplot global
state, so figures can be drawn from worker threads."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ACCENT = "#2F5D8A"
ALERT = "#C0392B"


def _png(fig: Figure, dpi: int = 110) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def score_histogram(scores: np.ndarray, threshold: float | None, flagged_label: str = "threshold") -> bytes:
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    fig = Figure(figsize=(6.4, 2.5))
    ax = fig.add_subplot()
    bins = np.histogram_bin_edges(scores, bins=60) if len(scores) else 10
    ax.hist(scores, bins=bins, color=ACCENT, alpha=0.85)
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(threshold, color=ALERT, linewidth=1.6, linestyle="--")
        if len(scores):
            ax.axvspan(threshold, max(float(scores.max()), threshold), color=ALERT, alpha=0.08)
        # labelled in the flagged region (x in data, y in axes units: works with the log scale)
        ax.text(threshold, 0.97, f" {flagged_label} {threshold:.5g}", transform=ax.get_xaxis_transform(),
                color=ALERT, ha="left", va="top", fontsize=9)
    ax.set_yscale("log")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("records (log scale)")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def loss_curve(train: Sequence[float], validation: Sequence[float] | None = None) -> bytes:
    fig = Figure(figsize=(4.6, 3.0))
    ax = fig.add_subplot()
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, color=ACCENT, marker="o" if len(train) < 30 else None, markersize=3, label="training")
    if validation is not None and len(validation):
        ax.plot(np.arange(1, len(validation) + 1), validation, color="#E67E22", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("training loss per epoch", fontsize=10)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def roc_pr(labels: np.ndarray, scores: np.ndarray, source: str) -> bytes:
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fig = Figure(figsize=(6.4, 2.8), layout="constrained")
    ax_roc, ax_pr = fig.subplots(1, 2)
    fpr, tpr, _ = roc_curve(labels, scores)
    ax_roc.plot(fpr, tpr, color=ACCENT)
    ax_roc.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle=":")
    ax_roc.set_title(f"ROC (AUC {auc(fpr, tpr):.3f})", fontsize=10)
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    precision, recall, _ = precision_recall_curve(labels, scores)
    ax_pr.plot(recall, precision, color=ACCENT)
    ax_pr.axhline(float(np.mean(labels)), color="#999999", linewidth=0.8, linestyle=":")
    ax_pr.set_title("precision-recall", fontsize=10)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"measured against {source}", fontsize=9, color="#555555")
    return _png(fig)


def contribution_bars(contributions: Mapping[str, float], title: str = "", max_bars: int = 8) -> bytes:
    items = sorted(contributions.items(), key=lambda kv: -kv[1])[:max_bars]
    names = [str(k) for k, _ in items][::-1]
    shares = [100.0 * float(v) for _, v in items][::-1]
    fig = Figure(figsize=(4.2, 0.26 * max(len(items), 2) + 0.7))
    ax = fig.add_subplot()
    ax.barh(names, shares, color=ALERT if items else ACCENT)
    for y, share in enumerate(shares):
        ax.text(share, y, f" {share:.0f}%", va="center", fontsize=8)
    ax.set_xlim(0, max(shares + [1.0]) * 1.2)
    ax.set_xlabel("share of the score (%)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig, dpi=100)
