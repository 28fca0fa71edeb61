"""The Compare screen ("model lab"): choose a detector with evidence.

``panel`` holds the screen (detectors, Run, the page tabs) and the main window's side; each page has
its module: ``metrics`` (table, ROC and PR curves), ``disagreements`` (where two detectors differ, sent
to the review queue), ``contamination`` (AUCROC against anomalies mixed into training) and
``playback`` (the file replayed in arrival order with running precision and recall).
"""

from ui.panels.compare.common import CompareData
from ui.panels.compare.panel import ComparePanel, show_in_queue, window_data

__all__ = ["ComparePanel", "CompareData", "window_data", "show_in_queue"]
