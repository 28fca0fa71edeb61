"""Record detail (contributions, values vs expected, histogram position, what-if) and the error plot."""

import numpy as np
import pandas as pd
from PySide6.QtCore import QPointF, Qt

from tests.ui.conftest import open_and_wait, train_and_wait


def test_selected_record_shows_why_it_was_flagged(qtbot, trained_window):
    w = trained_window
    w.review_panel.select_row(0)
    record = w.review_panel.current_record()
    detail = w.detail_panel
    assert f"Record {record + 1:,}" in detail.title.text()
    shares = w.result.contributions[record]
    top = w.result.columns[int(np.argmax(shares))]
    assert detail.chart.names[0] == top  # top feature first
    assert np.all(np.diff(detail.chart.shares) <= 0)
    assert detail.table.item(0, 0).text() == top
    assert detail.table.rowCount() == len(w.result.columns)
    assert detail.histogram.marker.isVisible()
    assert detail.histogram.marker.value() == w.scores[record]


def test_what_if_rescores_the_record_at_once(qtbot, trained_window):
    w = trained_window
    w.review_panel.select_row(0)
    record = w.review_panel.current_record()
    detail = w.detail_panel
    row = [detail.table.item(r, 0).text() for r in range(detail.table.rowCount())].index("DMBTR")
    original = float(w.loaded.frame["DMBTR"].iat[record])
    detail.table.item(row, 1).setText(str(original * 1000 + 12345))  # what editing the cell does
    result = detail.last_what_if
    assert result is not None
    assert "What-if (DMBTR" in detail.what_if_label.text()
    assert result.score != result.before_score
    assert detail.reset_button.isEnabled()
    detail.set_what_if("DMBTR", "not a number")
    assert "not a number" in detail.what_if_label.text()
    detail.reset_button.click()
    assert detail.last_what_if is None and detail.what_if_label.text() == ""
    # categorical value changed to one the model never saw
    detail.set_what_if("HKONT", "G999")
    assert detail.last_what_if is not None and np.isfinite(detail.last_what_if.score)


def test_wide_numeric_rows_are_drawn_as_lines_beside_the_reconstruction(qtbot, window, tmp_path):
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 40)
    beats = np.sin(t)[None, :] + 0.05 * rng.standard_normal((300, 40))
    beats[:5] += 1.5 * np.cos(3 * t)  # odd beats
    frame = pd.DataFrame(beats, columns=[f"t{i}" for i in range(40)])
    path = tmp_path / "beats.csv"
    frame.to_csv(path, index=False)
    open_and_wait(qtbot, window, path)
    train_and_wait(qtbot, window, "pca")
    window.review_panel.select_row(0)
    plot = window.detail_panel.line_plot
    assert plot.isVisible()
    xs, ys = plot.actual.getData()
    assert len(xs) == 40
    ex, ey = plot.expected.getData()
    assert ex is not None and len(ex) == 40 and not np.allclose(ys, ey)


def test_clicking_the_error_plot_selects_the_record_in_the_queue(qtbot, trained_window):
    w = trained_window
    plot = w.error_plot
    assert len(plot.curve.getData()[0]) > 0
    assert plot.threshold_line.isVisible()
    target = int(np.argmax(w.scores))
    w.review_panel.flagged_check.setChecked(True)
    plot.record_clicked.emit(plot.nearest_record(float(target), float(w.scores[target])))
    assert w.review_panel.current_record() == target
    # a real mouse click on the plot goes the same way
    vb = plot.getPlotItem().vb
    other = int(np.argsort(w.scores)[len(w.scores) // 2])
    vb.setRange(xRange=(other - 2, other + 2), yRange=(w.scores[other] - 0.01, w.scores[other] + 0.01),
                padding=0)
    qtbot.wait(50)
    scene_pos = vb.mapViewToScene(QPointF(other, w.scores[other]))
    view_pos = plot.mapFromScene(scene_pos)
    with qtbot.waitSignal(plot.record_clicked, timeout=2000) as blocker:
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)
    assert blocker.args[0] == other
    assert w.review_panel.current_record() == other
    # verdicts colour the plot's points
    w.review_panel.view.setFocus()
    qtbot.keyClick(w.review_panel.view, Qt.Key.Key_A)
    qtbot.wait(200)
    brushes = plot.marks.data["brush"]
    assert any(b.color().getRgb()[:3] == (200, 40, 40) for b in brushes)
