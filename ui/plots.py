"""pyqtgraph plots. Lines over every record use downsampling and clip-to-view set on the plot item
(passing ``clipToView=True`` to ``plot()`` breaks on pyqtgraph 0.14); scatter only for the top-k."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

PLOT_OPTIONS = {"background": "w", "foreground": "k", "antialias": False}

ANOMALY = (200, 40, 40)
NORMAL = (30, 130, 60)
UNSURE = (210, 140, 0)
LABELLED = (120, 60, 170)
LINE = (90, 110, 160)
TOP_K_POINTS = 5000
WHY_FLAGGED = "why flagged: share of the score per column"
WHAT_DRIVES = "what drives its score: share of the score per column"  # a record that is not flagged


def configure_plots() -> None:
    """pyqtgraph's options are process-wide, so they are set once at application start-up
    (ui.app.create_application), never as a side effect of importing a module."""
    pg.setConfigOptions(**PLOT_OPTIONS)


def _plain_axes(item) -> None:
    """No "(x0.001)" SI scaling on score axes: analysts compare the numbers with the queue's."""
    for name in ("left", "bottom"):
        item.getAxis(name).enableAutoSIPrefix(False)


def line_plot_item(widget: pg.PlotWidget, title: str, bottom: str, left: str | None = None, *, grid: bool = False,
                   legend_offset: tuple[int, int] = (10, 5)):
    """The plot item of a small line chart: plain axes, title, axis labels, optional grid, a legend."""
    item = widget.getPlotItem()
    _plain_axes(item)
    item.setTitle(title)
    item.setLabel("bottom", bottom)
    if left:
        item.setLabel("left", left)
    if grid:
        item.showGrid(x=True, y=True, alpha=0.2)
    widget.legend = widget.addLegend(offset=legend_offset)
    return item


def _histogram(values: np.ndarray, bins: int = 120) -> tuple[np.ndarray, np.ndarray]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return np.array([0.0, 1.0]), np.array([0.0])
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
    return edges, counts.astype(float)


class ErrorPlot(pg.PlotWidget):
    """Every record's score against its position (or time), coloured by label/verdict, threshold line,
    zoom with the mouse, a click selects the nearest record."""

    record_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("errorPlot")
        item = self.getPlotItem()
        _plain_axes(item)
        item.setLabel("left", "anomaly score")
        item.setLabel("bottom", "position in file")
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self.legend = self.addLegend(offset=(10, 5), colCount=3, brush=pg.mkBrush(255, 255, 255, 210),
                                     pen=pg.mkPen(200, 200, 200))
        self.curve = item.plot([], [], pen=pg.mkPen(LINE, width=1), name="all records")
        # one item per colour with a single brush: per-point brushes cost pyqtgraph ~17 us a point in
        # Python (0.84 s for the ~10k marks of a 1M-row ledger, measured); only verdicts (few) get them
        self.marks_top = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(150, 150, 150, 160))
        self.marks_labelled = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(*LABELLED, 200))
        self.marks = pg.ScatterPlotItem(size=6, pen=None)  # records with a verdict
        for item_ in (self.marks_top, self.marks_labelled, self.marks):
            self.addItem(item_)
        self.selected = pg.ScatterPlotItem(size=14, pen=pg.mkPen("k", width=2), brush=None, symbol="o")
        self.addItem(self.selected)
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen((220, 0, 0), width=2, style=Qt.PenStyle.DashLine))
        self.addItem(self.threshold_line)
        self.dynamic_curve = item.plot([], [], pen=pg.mkPen((220, 0, 0), width=1.5))
        self.dynamic_curve.setVisible(False)
        # what each colour means: the verdict marks share one item (per-point brushes), so the legend shows
        # a sample per colour; the samples are never added to the plot
        self.legend_samples = {}
        for name, brush in (("highest scores", pg.mkBrush(150, 150, 150, 160)),
                            ("labelled anomaly", pg.mkBrush(*LABELLED, 200)),
                            ("verdict: anomaly", pg.mkBrush(*ANOMALY)), ("verdict: normal", pg.mkBrush(*NORMAL)),
                            ("verdict: unsure", pg.mkBrush(*UNSURE))):
            sample = pg.ScatterPlotItem(size=8, pen=None, brush=brush)
            self.legend_samples[name] = sample
            self.legend.addItem(sample, name)
        threshold_sample = pg.PlotDataItem(pen=pg.mkPen((220, 0, 0), width=2, style=Qt.PenStyle.DashLine))
        self.legend_samples["threshold"] = threshold_sample
        self.legend.addItem(threshold_sample, "threshold")
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_data(self, scores: np.ndarray, x: np.ndarray | None = None, x_label: str = "position in file") -> None:
        self.y = np.asarray(scores, dtype=float)
        self.x = np.arange(len(self.y), dtype=float) if x is None else np.asarray(x, dtype=float)
        order = np.argsort(self.x, kind="stable") if x is not None else None
        if order is not None:
            self.curve.setData(self.x[order], np.nan_to_num(self.y[order]))
        else:
            self.curve.setData(self.x, np.nan_to_num(self.y))
        self.getPlotItem().setLabel("bottom", x_label)
        self.selected.setData([], [])
        self.getPlotItem().enableAutoRange()

    def set_marks(self, labels: np.ndarray | None, verdicts: np.ndarray | None) -> None:
        """Colour the top-k records plus every labelled anomaly and every verdict (never all 1M)."""
        n = len(self.y)
        if n == 0:
            for item in (self.marks_top, self.marks_labelled, self.marks):
                item.setData([], [])
            return
        k = min(TOP_K_POINTS, max(100, n // 50), n)
        pick = np.argpartition(-np.nan_to_num(self.y, nan=-np.inf), k - 1)[:k] if k < n else np.arange(n)
        judged = np.flatnonzero(verdicts > 0) if verdicts is not None else np.zeros(0, dtype=np.int64)
        labelled = (np.union1d(np.flatnonzero(labels)[:TOP_K_POINTS], pick[np.asarray(labels)[pick].astype(bool)])
                    if labels is not None else np.zeros(0, dtype=np.int64))
        labelled = np.setdiff1d(labelled, judged, assume_unique=True)
        top = np.setdiff1d(np.setdiff1d(pick, judged), labelled)
        self.marks_top.setData(self.x[top], self.y[top], data=top)
        self.marks_labelled.setData(self.x[labelled], self.y[labelled], data=labelled)
        if len(judged):
            colours = {1: pg.mkBrush(*ANOMALY), 2: pg.mkBrush(*NORMAL), 3: pg.mkBrush(*UNSURE)}
            brushes = [colours.get(int(v), colours[3]) for v in verdicts[judged]]
            self.marks.setData(self.x[judged], self.y[judged], brush=brushes, data=judged)
        else:
            self.marks.setData([], [])

    def set_threshold(self, value: float | None, dynamic: np.ndarray | None = None) -> None:
        if dynamic is not None and len(dynamic) == len(self.x):
            self.dynamic_curve.setData(self.x, dynamic)
            self.dynamic_curve.setVisible(True)
            self.threshold_line.setVisible(False)
        else:
            self.dynamic_curve.setVisible(False)
            self.threshold_line.setVisible(bool(value is not None and np.isfinite(value)))
            if value is not None and np.isfinite(value):
                self.threshold_line.setValue(value)

    def select(self, record: int) -> None:
        if 0 <= record < len(self.y):
            self.selected.setData([self.x[record]], [self.y[record]])

    def nearest_record(self, x: float, y: float) -> int | None:
        """Nearest record in screen terms: within the clicked x window, the one closest in y."""
        if len(self.x) == 0:
            return None
        vb = self.getPlotItem().vb
        (x0, x1), (y0, y1) = vb.viewRange()
        span_x = max((x1 - x0) * 0.01, 0.5)
        near = np.flatnonzero(np.abs(self.x - x) <= span_x)
        if len(near) == 0:
            near = np.array([int(np.argmin(np.abs(self.x - x)))])
        dy = np.abs(np.nan_to_num(self.y[near], nan=np.inf) - y) / max(y1 - y0, 1e-12)
        dx = np.abs(self.x[near] - x) / max(x1 - x0, 1e-12)
        return int(near[np.argmin(dx + dy)])

    def _clicked(self, event) -> None:
        vb = self.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        p = vb.mapSceneToView(event.scenePos())
        record = self.nearest_record(p.x(), p.y())
        if record is not None:
            self.record_clicked.emit(record)


class ThresholdHistogram(pg.PlotWidget):
    """Score histogram with a draggable threshold line."""

    threshold_dragged = Signal(float)  # while dragging
    threshold_moved = Signal(float)  # drag finished

    def __init__(self, parent=None, draggable: bool = True, title: str = "score histogram"):
        super().__init__(parent)
        item = self.getPlotItem()
        _plain_axes(item)
        item.setLabel("bottom", "anomaly score")
        item.setLabel("left", "records (log)")
        item.setTitle(title)
        item.setLogMode(x=False, y=False)
        self.bars = pg.PlotDataItem([0, 1], [0], stepMode="center", fillLevel=0,
                                    brush=pg.mkBrush(90, 110, 160, 140), pen=pg.mkPen(LINE))
        self.addItem(self.bars)
        self.line = pg.InfiniteLine(angle=90, movable=draggable,
                                    pen=pg.mkPen((220, 0, 0), width=2), hoverPen=pg.mkPen((255, 90, 0), width=3),
                                    label="threshold {value:.4g}", labelOpts={"position": 0.9, "color": (200, 0, 0)})
        self.addItem(self.line)
        self.marker = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((0, 0, 0), width=2))
        self.marker.setVisible(False)
        self.addItem(self.marker)
        self.line.sigDragged.connect(lambda ln: self.threshold_dragged.emit(float(ln.value())))
        self.line.sigPositionChangeFinished.connect(lambda ln: self.threshold_moved.emit(float(ln.value())))

    def set_scores(self, scores: np.ndarray) -> None:
        edges, counts = _histogram(np.asarray(scores, dtype=float))
        # log1p counts: the few anomalies stay visible beside the mass of normal records
        self.bars.setData(edges, np.log10(counts + 1.0))
        self.line.setBounds((edges[0], edges[-1]))
        self.getPlotItem().enableAutoRange()

    def set_threshold(self, value: float) -> None:
        if np.isfinite(value):
            self.line.setValue(value)  # emits only sigPositionChanged (the label), not the drag signals

    def set_marker(self, value: float | None) -> None:
        self.marker.setVisible(bool(value is not None and np.isfinite(value)))
        if value is not None and np.isfinite(value):
            self.marker.setValue(value)


class ContributionChart(pg.PlotWidget):
    """Horizontal bars, top contributing feature first."""

    def __init__(self, parent=None, top: int = 10):
        super().__init__(parent)
        self.top = top
        item = self.getPlotItem()
        _plain_axes(item)
        item.setTitle(WHY_FLAGGED)
        item.setLabel("bottom", "share of score")
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brush=pg.mkBrush(*ANOMALY, 190))
        self.addItem(self.bars)
        self.names: list[str] = []
        self.shares = np.zeros(0)

    def set_contributions(self, columns: list[str], shares: np.ndarray) -> None:
        shares = np.nan_to_num(np.asarray(shares, dtype=float))
        order = np.argsort(-shares, kind="stable")[: self.top]
        self.names = [columns[i] for i in order]
        self.shares = shares[order]
        n = len(order)
        ys = np.arange(n)[::-1].astype(float)  # first = top of the chart
        self.bars.setOpts(x0=np.zeros(n), y=ys, width=self.shares, height=0.7)
        axis = self.getPlotItem().getAxis("left")
        # the axis does not widen itself for text ticks: size it to the longest column name
        from PySide6.QtGui import QFontMetrics

        metrics = QFontMetrics(axis.font() if hasattr(axis, "font") else self.font())
        axis.setWidth(min(220, 14 + max((metrics.horizontalAdvance(nm) for nm in self.names), default=20)))
        axis.setTicks([[(float(y), name) for y, name in zip(ys, self.names, strict=False)]])
        self.getPlotItem().setXRange(0, max(float(self.shares.max()) if n else 1.0, 0.05) * 1.05, padding=0)
        self.getPlotItem().setYRange(-0.6, max(n, 1) - 0.4, padding=0)


class ValuesPlot(pg.PlotWidget):
    """Wide numeric rows (a heartbeat): the record and the model's reconstruction as two lines."""

    def __init__(self, parent=None):
        super().__init__(parent)
        item = line_plot_item(self, "record vs reconstruction", "column position")
        self.actual = item.plot([], [], pen=pg.mkPen(ANOMALY, width=2), name="record")
        self.expected = item.plot([], [], pen=pg.mkPen(NORMAL, width=2, style=Qt.PenStyle.DashLine),
                                  name="expected")

    def set_values(self, actual: np.ndarray, expected: np.ndarray | None) -> None:
        self.actual.setData(np.arange(len(actual)), np.asarray(actual, dtype=float))
        if expected is None:
            self.expected.setData([], [])
        else:
            self.expected.setData(np.arange(len(expected)), np.asarray(expected, dtype=float))
        self.getPlotItem().enableAutoRange()


class LossPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        item = line_plot_item(self, "training loss", "epoch", "loss", grid=True)
        self.train = item.plot([], [], pen=pg.mkPen(LINE, width=2), symbol="o", symbolSize=5, name="train")
        self.val = item.plot([], [], pen=pg.mkPen(ANOMALY, width=2), symbol="t", symbolSize=5, name="validation")
        # the two curves are not the same quantity for the masked model; say so where the analyst looks
        self.setToolTip("train: the loss the model is fitted on, per row (with categorical columns, only the "
                        "columns hidden at random in each row). validation: the same on held-out rows (with "
                        "categorical columns, every column hidden in turn, as in scoring, so it sits higher).")

    def set_history(self, history) -> None:
        if not history:
            self.train.setData([], [])
            self.val.setData([], [])
            return
        h = np.array([(e, t, np.nan if v is None else v) for e, t, v in history], dtype=float)
        self.train.setData(h[:, 0], h[:, 1])
        has_val = ~np.isnan(h[:, 2])
        self.val.setData(h[has_val, 0], h[has_val, 2])


def setup_curve_axes(item: pg.PlotItem, title: str, x_label: str, y_label: str, diagonal: bool) -> None:
    """Axes of a ROC or precision-recall plot (ROC with the chance diagonal)."""
    _plain_axes(item)
    item.setTitle(title)
    item.setLabel("bottom", x_label)
    item.setLabel("left", y_label)
    item.showGrid(x=True, y=True, alpha=0.2)
    if diagonal:
        item.plot([0, 1], [0, 1], pen=pg.mkPen((170, 170, 170), style=Qt.PenStyle.DashLine))


class CurvePlot(pg.PlotWidget):
    """ROC or precision-recall curve with the current threshold's point."""

    def __init__(self, title: str, x_label: str, y_label: str, diagonal: bool, parent=None):
        super().__init__(parent)
        item = self.getPlotItem()
        setup_curve_axes(item, title, x_label, y_label, diagonal)
        item.setXRange(0, 1, padding=0.02)
        item.setYRange(0, 1, padding=0.02)
        self.curve = item.plot([], [], pen=pg.mkPen(LINE, width=2))
        self.point = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(*ANOMALY), pen=pg.mkPen("k"))
        self.addItem(self.point)

    def set_curve(self, x: np.ndarray | None, y: np.ndarray | None) -> None:
        if x is None or y is None:
            self.curve.setData([], [])
        else:
            self.curve.setData(np.asarray(x, float), np.asarray(y, float))

    def set_point(self, x: float | None, y: float | None) -> None:
        if x is None or y is None or not (np.isfinite(x) and np.isfinite(y)):
            self.point.setData([], [])
        else:
            self.point.setData([x], [y])
