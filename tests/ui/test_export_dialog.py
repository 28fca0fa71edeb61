"""File > Export…: the title, author and notes typed in the dialog reach the workbook's Summary sheet."""

from __future__ import annotations

import openpyxl

from ui.export_dialog import FORMATS


def test_title_author_notes_typed_reach_the_xlsx_summary(qtbot, trained_window, tmp_path):
    w = trained_window
    w.choose_export()
    dialog = w.export_dialog
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("xlsx"))
    assert dialog.title_edit.isEnabled() and dialog.author_edit.isEnabled() and dialog.notes_edit.isEnabled()
    assert "reviewed queue" not in dialog.format_combo.currentText()
    dialog.path_edit.setText(str(tmp_path / "typed.xlsx"))
    dialog.title_edit.clear()
    qtbot.keyClicks(dialog.title_edit, "Q3 ledger review")
    dialog.author_edit.clear()
    qtbot.keyClicks(dialog.author_edit, "Ana Lyst")
    qtbot.keyClicks(dialog.notes_edit, "checked with the controller")
    with qtbot.waitSignal(w.exported, timeout=60_000):
        dialog.accept()
    book = openpyxl.load_workbook(tmp_path / "typed.xlsx", read_only=True)
    cells = [str(c) for row in book["Summary"].iter_rows(values_only=True) for c in row if c is not None]
    book.close()
    assert "Q3 ledger review" in cells
    assert "Ana Lyst" in cells
    assert "checked with the controller" in cells


def test_csv_is_a_bare_table_without_title(qtbot, window, tmp_path):
    from ui.export_dialog import ExportDialog

    dialog = ExportDialog(window, str(tmp_path / "q.xlsx"))
    qtbot.addWidget(dialog)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("csv"))
    assert dialog.path().endswith(".csv") and not dialog.title_edit.isEnabled()
    assert all("the reviewed queue" not in text for _, text in FORMATS)
