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
