"""File > Export...: where, which format, and the report's title, author and notes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
)

FORMATS = [("xlsx", "Excel workbook: Summary (title, author, notes, counts), Queue and Verdicts sheets"),
           ("csv", "CSV: the queue table only"),
           ("html", "HTML report (self-contained)"), ("pdf", "PDF report")]
WITH_TITLE = ("xlsx", "html", "pdf")  # the formats that print the title, author and notes (CSV is a bare table)


class ExportDialog(QDialog):
    def __init__(self, parent, path: str, title: str = "", author: str = ""):
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export")
        self.format_combo = QComboBox()
        for key, text in FORMATS:
            self.format_combo.addItem(text, key)
        self.path_edit = QLineEdit(path)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.title_edit = QLineEdit(title or "Anomaly Desk report")
        self.author_edit = QLineEdit(author)
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setPlaceholderText("notes printed at the top of the report (the workbook's Summary sheet)")
        self.notes_edit.setMaximumHeight(90)
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format_combo)
        form.addRow("File", row)
        form.addRow("Title", self.title_edit)
        form.addRow("Author", self.author_edit)
        form.addRow("Notes", self.notes_edit)
        form.addRow(buttons)
        self.resize(560, 300)
        self._format_changed()

    def _format_changed(self) -> None:
        fmt = self.format_combo.currentData()
        p = Path(self.path_edit.text() or "review")
        self.path_edit.setText(str(p.with_suffix("." + fmt)))
        for w in (self.title_edit, self.author_edit, self.notes_edit):
            w.setEnabled(fmt in WITH_TITLE)

    def _browse(self) -> None:
        fmt = self.format_combo.currentData()
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path_edit.text(), f"*.{fmt}")
        if path:
            self.path_edit.setText(path)

    def path(self) -> str:
        return self.path_edit.text()

    def title(self) -> str:
        return self.title_edit.text()

    def author(self) -> str:
        return self.author_edit.text()

    def notes(self) -> str:
        return self.notes_edit.toPlainText()
