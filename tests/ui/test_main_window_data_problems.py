"""Data problems in the window: a file with bad rows is offered "Skip the bad rows" instead of a refusal."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox


def _with_bad_rows(small_csv, tmp_path):
    lines = small_csv.read_text().splitlines()
    lines.insert(5, "only,three,fields")  # file row 6
    lines.insert(10, lines[10] + ",one too many")  # file row 11
    path = tmp_path / "ledger_bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, len(lines) - 1 - 2


def test_bad_rows_can_be_skipped_and_are_listed(qtbot, window, small_csv, tmp_path):
    path, good = _with_bad_rows(small_csv, tmp_path)
    window.open_file(path)
    qtbot.waitUntil(lambda: any(b.objectName() == "badRowsDialog" for b in window.error_dialogs), timeout=30_000)
    box = next(b for b in window.error_dialogs if b.objectName() == "badRowsDialog")
    assert "row 6" in box.text() and "row 11" in box.text()
    assert window.loaded is None
    with qtbot.waitSignal(window.file_loaded, timeout=30_000):
        window.skip_button.click()
    assert len(window.loaded.frame) == good and window.queue.rowCount() == good
    problems = [window.data_panel.problems.item(i).text() for i in range(window.data_panel.problems.count())]
    assert any("2 bad row(s) skipped" in p and "6, 11" in p for p in problems)
    assert window.session.skipped_rows[0].startswith("row 6:")
    assert "2 bad rows skipped" in window.status_label.text()


def test_cancel_keeps_the_file_refused(qtbot, window, small_csv, tmp_path):
    path, _ = _with_bad_rows(small_csv, tmp_path)
    window.open_file(path)
    qtbot.waitUntil(lambda: any(b.objectName() == "badRowsDialog" for b in window.error_dialogs), timeout=30_000)
    box = next(b for b in window.error_dialogs if b.objectName() == "badRowsDialog")
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.wait(50)
    assert window.loaded is None and not window.jobs.slot("load").busy


def test_skipped_rows_are_counted_in_the_exported_workbook(qtbot, window, small_csv, tmp_path):
    import openpyxl

    from tests.ui.conftest import train_and_wait

    path, _ = _with_bad_rows(small_csv, tmp_path)
    window.open_file(path)
    qtbot.waitUntil(lambda: any(b.objectName() == "badRowsDialog" for b in window.error_dialogs), timeout=30_000)
    with qtbot.waitSignal(window.file_loaded, timeout=30_000):
        window.skip_button.click()
    train_and_wait(qtbot, window, "iforest", {"n_estimators": 20})
    out = tmp_path / "review.xlsx"
    with qtbot.waitSignal(window.exported, timeout=60_000):
        window.export(out, title="t")
    book = openpyxl.load_workbook(out, read_only=True)
    rows = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r and r[0]}
    book.close()
    assert rows.get("bad rows skipped when reading") == 2


def _drifted(small_csv, tmp_path):
    import numpy as np
    import pandas as pd

    new = pd.read_csv(small_csv).head(400).drop(columns=["label"])
    rng = np.random.default_rng(5)
    new["HKONT"] = [f"G9{i:02d}" for i in rng.integers(0, 60, len(new))]  # another company's accounts
    new["DMBTR"] = new["DMBTR"] * 300.0
    path = tmp_path / "other_company.csv"
    new.to_csv(path, index=False)
    return path, len(new)


def test_drift_is_shown_plainly_and_offers_training_on_the_file(qtbot, trained_window, small_csv, tmp_path):
    from ui.main_window import TAB_TRAIN

    w = trained_window
    path, rows = _drifted(small_csv, tmp_path)
    with qtbot.waitSignal(w.model_applied, timeout=60_000):
        w.apply_model_to(path)
    box = w.error_dialogs[-1]
    assert box.objectName() == "driftDialog"
    assert "does not look like the data the model learnt" in box.text()
    assert "Columns that moved:" in box.text() and "HKONT" in box.text() and "DMBTR" in box.text()
    assert "HKONT" in w.status_label.text()
    with qtbot.waitSignal(w.file_loaded, timeout=30_000):
        w.train_here_button.click()
    assert w.tabs.currentIndex() == TAB_TRAIN
    assert w.loaded.path == str(path) and len(w.loaded.frame) == rows
    assert w.model is None and w.train_panel.train_button.isEnabled()  # ready to train on the new file


def test_a_file_like_the_training_data_gets_no_drift_warning(qtbot, trained_window, small_csv, tmp_path):
    import pandas as pd

    w = trained_window
    same = tmp_path / "same_source.csv"
    pd.read_csv(small_csv).tail(400).drop(columns=["label"]).to_csv(same, index=False)
    with qtbot.waitSignal(w.model_applied, timeout=60_000):
        w.apply_model_to(same)
    assert w.error_dialogs[-1].objectName() == "infoDialog"
