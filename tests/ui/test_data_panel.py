"""The Open screen, driven as an analyst would."""

from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from engine.schema import Role
from tests.ui.conftest import open_and_wait, set_known_good_reference, train_and_wait
from ui.data_panel import NO_LABEL


def role_cell(window, column):
    table = window.data_panel.table
    for r in range(table.rowCount()):
        if table.item(r, 0).text() == column:
            return table.item(r, 1)
    raise KeyError(column)


def test_the_bundled_sample_opens_with_roles_reasons_and_statistics(qtbot, window, sample_csv):
    open_and_wait(qtbot, window, sample_csv)
    panel = window.data_panel
    assert panel.table.rowCount() == len(window.loaded.frame.columns) == 10
    assert role_cell(window, "BELNR").text() == "identifier"
    assert role_cell(window, "label").text() == "label"
    assert role_cell(window, "DMBTR").text() == "numeric"
    # reason and statistics shown beside the role
    row = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())].index("DMBTR")
    assert panel.table.item(row, 2).text()
    assert panel.table.item(row, 6).text() and panel.table.item(row, 7).text()  # min, max
    assert panel.label_combo.currentText() == "label"
    assert panel.normal_combo.currentText() == "regular"
    assert panel.problems.count() >= 1  # problems listed, or an explicit "no problems"
    assert "20,000 rows" in panel.file_label.text()
    assert window.queue.rowCount() == 20_000
    assert str(Path(sample_csv).resolve()) in window.recent_files()


def test_changing_a_role_through_the_role_cell_changes_the_schema(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    assert "WAERS" in window.schema.feature_columns
    role_cell(window, "WAERS").setText("ignored")  # what the combo-box editor writes
    assert window.overrides.roles == {"WAERS": Role.IGNORED}
    assert "WAERS" not in window.schema.feature_columns
    assert role_cell(window, "WAERS").text() == "ignored"
    # the delegate offers every role
    delegate = window.data_panel.table.itemDelegateForColumn(1)
    editor = delegate.createEditor(window.data_panel.table, None, window.data_panel.table.indexFromItem(
        role_cell(window, "DMBTR")))
    assert [editor.itemText(i) for i in range(editor.count())] == [r.value for r in Role]
    editor.deleteLater()
    # a nonsense role typed in is refused, the old role stays
    role_cell(window, "DMBTR").setText("banana")
    assert role_cell(window, "DMBTR").text() == "numeric"


def test_label_column_and_normal_value_pickers(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    panel = window.data_panel
    assert window.labels is not None and window.labels.sum() == 60  # 40 global + 20 local
    panel.label_combo.setCurrentText(NO_LABEL)
    panel.label_combo.activated.emit(panel.label_combo.currentIndex())
    assert window.schema.label_column is None
    assert window.labels is None
    assert "label" not in window.schema.feature_columns  # never a feature, even when not the label
    panel.label_combo.setCurrentText("label")
    panel.label_combo.activated.emit(panel.label_combo.currentIndex())
    assert window.schema.label_column == "label"
    panel.normal_combo.setCurrentText("global")
    panel.normal_combo.activated.emit(panel.normal_combo.currentIndex())
    assert window.schema.normal_value == "global"
    assert window.labels.sum() == len(window.loaded.frame) - 40


def test_reference_file_of_known_good_rows(qtbot, window, small_csv, tmp_path):
    open_and_wait(qtbot, window, small_csv)
    set_known_good_reference(qtbot, window, small_csv, tmp_path)
    assert "known_good.csv" in window.data_panel.reference_label.text()
    assert window.train_panel.use_reference()
    # trained on the known-good rows: the default threshold flags 1% of them
    train_and_wait(qtbot, window, detector="pca")
    assert window.threshold_panel.method == "default"  # the rule in force; it chose a target rate on the reference
    assert "reference records" in window.threshold_panel.explanation.text()
    assert window.model.detector == "pca" and window.reference_scores is not None
    assert (window.reference_scores >= window.threshold_panel.value).mean() <= 0.01
    window.data_panel.reference_clear.click()
    assert window.reference is None and not window.train_panel.use_reference()


def test_drag_and_drop_opens_the_file(qtbot, window, small_csv):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_csv))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.file_loaded, timeout=30_000):
        window.dropEvent(event)
    assert window.loaded.path.endswith("ledger_small.csv")
    assert window.recent_menu.actions()[0].text().endswith("ledger_small.csv")


def test_a_broken_file_shows_a_dialog_and_the_app_keeps_working(qtbot, window, small_csv, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b"\x00\x01\x02garbage\xff\xfe")
    window.open_file(bad)
    qtbot.waitUntil(lambda: len(window.error_dialogs) == 1, timeout=20_000)
    dialog = window.error_dialogs[0]
    assert dialog.isVisible()
    assert "broken.csv" in dialog.text()
    assert "Traceback" not in dialog.text()
    dialog.accept()
    window.open_file(tmp_path / "does_not_exist.csv")
    qtbot.waitUntil(lambda: len(window.error_dialogs) == 2, timeout=20_000)
    assert "does_not_exist.csv" in window.error_dialogs[1].text()
    open_and_wait(qtbot, window, small_csv)  # still usable
    assert window.queue.rowCount() == 1500


def test_many_long_column_names_do_not_widen_the_window_past_the_screen(qtbot, window, tmp_path):
    """Seen with KDD (18 features like dst_host_srv_diff_host_rate) in the real window: the schema
    summary listed them on one line and the window grew to 1539 pixels on a 1400-pixel screen. (The
    offscreen platform does not grow the window, so the label's own minimum width is checked.)"""
    rng = np.random.default_rng(0)
    names = [f"destination_host_service_rate_{i:02d}" for i in range(30)]
    path = tmp_path / "wide_names.csv"
    pd.DataFrame(rng.random((50, 30)), columns=names).to_csv(path, index=False)
    open_and_wait(qtbot, window, str(path))
    summary = window.data_panel.summary
    assert summary.text().startswith("30 feature columns: destination_host_service_rate_00")
    assert "destination_host_service_rate_29" in summary.toolTip()  # all of them, where the text stops at 12
    assert summary.minimumSizeHint().width() < 600  # wraps; unwrapped it needs 2,723 pixels
    assert window.minimumSizeHint().width() < 1200
