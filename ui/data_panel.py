"""The Open screen: the file, its inferred column roles (editable), the label column and its normal
value, the problems found, and an optional reference file of known-good rows."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.schema import Role, Schema, SchemaOverrides

ROLE_NAMES = [r.value for r in Role]
COLUMNS = ("Column", "Role", "Why", "Type", "Missing", "Distinct", "Min", "Max", "Most frequent values")
NO_LABEL = "(no label column)"


class RoleDelegate(QStyledItemDelegate):
    """A combo box editor for the Role column (no widget per row: files may have 10,000 columns)."""

    def createEditor(self, parent, option, index):  # noqa: N802 - Qt API
        combo = QComboBox(parent)
        combo.addItems(ROLE_NAMES)
        combo.activated.connect(lambda _i, c=combo: self.commitData.emit(c))
        return combo

    def setEditorData(self, editor, index):  # noqa: N802 - Qt API
        editor.setCurrentText(index.data())

    def setModelData(self, editor, model, index):  # noqa: N802 - Qt API
        model.setData(index, editor.currentText())


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1e12 and abs(v) >= 1 else f"{v:.6g}"
    return str(v)


class DataPanel(QWidget):
    open_requested = Signal()
    reference_requested = Signal()
    reference_cleared = Signal()
    overrides_changed = Signal(object)  # SchemaOverrides

    def __init__(self, parent=None):
        super().__init__(parent)
        self.inferred: Schema | None = None
        self.overrides = SchemaOverrides()
        self._updating = False

        self.file_label = QLabel("No file open: File > Open, or drop a CSV on the window.")
        self.file_label.setObjectName("fileLabel")
        self.file_label.setWordWrap(True)
        open_button = QPushButton("Open CSV…")
        open_button.clicked.connect(self.open_requested)
        top = QHBoxLayout()
        top.addWidget(self.file_label, 1)
        top.addWidget(open_button)

        self.reference_label = QLabel("Train on this file (no reference file of known-good rows).")
        self.reference_label.setObjectName("referenceLabel")
        self.reference_button = QPushButton("Reference file…")
        self.reference_button.setToolTip("a separate file of known-good rows to learn normal behaviour from")
        self.reference_button.clicked.connect(self.reference_requested)
        self.reference_clear = QPushButton("Clear")
        self.reference_clear.clicked.connect(self.reference_cleared)
        self.reference_clear.setEnabled(False)
        ref = QHBoxLayout()
        ref.addWidget(self.reference_label, 1)
        ref.addWidget(self.reference_button)
        ref.addWidget(self.reference_clear)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("rolesTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.table.setItemDelegateForColumn(1, RoleDelegate(self.table))
        header = self.table.horizontalHeader()
        for i, w in enumerate((110, 100, 320, 70, 65, 65, 100, 110)):
            header.resizeSection(i, w)
        header.setStretchLastSection(True)
        self.table.itemChanged.connect(self._item_changed)

        self.label_combo = QComboBox()
        self.label_combo.setObjectName("labelCombo")
        self.label_combo.setToolTip("a column of known outcomes: used to measure the model, never as a feature")
        self.label_combo.activated.connect(self._label_chosen)
        self.normal_combo = QComboBox()
        self.normal_combo.setObjectName("normalCombo")
        self.normal_combo.setEditable(True)
        self.normal_combo.setToolTip("the label value that means 'normal'; every other value is an anomaly")
        self.normal_combo.activated.connect(self._normal_chosen)
        self.normal_combo.lineEdit().editingFinished.connect(self._normal_chosen)
        label_row = QHBoxLayout()
        label_row.addWidget(QLabel("Label column:"))
        label_row.addWidget(self.label_combo, 1)
        label_row.addWidget(QLabel("normal value:"))
        label_row.addWidget(self.normal_combo, 1)
        self.summary = QLabel("")
        self.summary.setObjectName("schemaSummary")
        # wraps: unwrapped, a file with many long column names made the window wider than the screen
        self.summary.setWordWrap(True)

        roles_box = QGroupBox("Column roles (double-click a role to change it)")
        rb = QVBoxLayout(roles_box)
        rb.addWidget(self.table)
        rb.addLayout(label_row)
        rb.addWidget(self.summary)

        self.problems = QListWidget()
        self.problems.setObjectName("problemsList")
        problems_box = QGroupBox("Problems found in the file")
        pb = QVBoxLayout(problems_box)
        pb.addWidget(self.problems)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(roles_box)
        split.addWidget(problems_box)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        self.splitter = split

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(ref)
        layout.addWidget(split, 1)

    # -- showing a schema ------------------------------------------------------------------------
    def set_file(self, path: str, rows: int, encoding: str, delimiter: str) -> None:
        shown = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, repr(delimiter))
        self.file_label.setText(f"<b>{path}</b><br>{rows:,} rows · encoding {encoding} · delimiter {shown}")

    def set_reference(self, path: str | None, rows: int | None = None) -> None:
        if path:
            self.reference_label.setText(f"Learn normal behaviour from the reference file <b>{path}</b>"
                                         + (f" ({rows:,} known-good rows)" if rows else ""))
        else:
            self.reference_label.setText("Train on this file (no reference file of known-good rows).")
        self.reference_clear.setEnabled(bool(path))

    def set_schema(self, inferred: Schema, overrides: SchemaOverrides, problems: list[str]) -> None:
        self.inferred = inferred
        self.overrides = overrides
        self.problems.clear()
        self.problems.addItems(problems or ["No problems found."])
        self.refresh()

    def effective(self) -> Schema | None:
        return self.overrides.apply(self.inferred) if self.inferred is not None else None

    def refresh(self) -> None:
        schema = self.effective()
        if schema is None:
            return
        self._updating = True
        self.table.setRowCount(len(schema.columns))
        for r, c in enumerate(schema.columns):
            missing = f"{100 * c.missing_share:.1f}%" if c.missing_share else ""
            top = ", ".join(_fmt(v) for v in (c.top_values or [])[:5])
            cells = (c.name, c.role.value, c.reason, c.dtype, missing, f"{c.n_distinct:,}", _fmt(c.min),
                     _fmt(c.max), top)
            for i, text in enumerate(cells):
                item = self.table.item(r, i)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, i, item)
                item.setText(text)
                if i == 2:
                    item.setToolTip(text)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if i == 1:
                    flags |= Qt.ItemFlag.ItemIsEditable
                    item.setToolTip("double-click to change the role")
                item.setFlags(flags)
            if c.name in self.overrides.roles:
                self.table.item(r, 1).setBackground(Qt.GlobalColor.yellow)
            else:
                self.table.item(r, 1).setData(Qt.ItemDataRole.BackgroundRole, None)
        self.label_combo.clear()
        self.label_combo.addItem(NO_LABEL)
        self.label_combo.addItems(schema.names)
        self.label_combo.setCurrentText(schema.label_column or NO_LABEL)
        self._fill_normal_values(schema)
        features = schema.feature_columns
        self.summary.setText(f"{len(features)} feature columns: {', '.join(features[:12])}"
                             + ("…" if len(features) > 12 else "")
                             + (f" · label '{schema.label_column}', normal = '{schema.normal_value}'"
                                if schema.label_column else " · no label column"))
        self.summary.setToolTip("feature columns: " + ", ".join(features))
        self._updating = False

    def _fill_normal_values(self, schema: Schema) -> None:
        self.normal_combo.clear()
        if not schema.label_column:
            self.normal_combo.setEnabled(False)
            return
        self.normal_combo.setEnabled(True)
        values = [str(v) for v in schema.column(schema.label_column).top_values or []]
        if schema.normal_value is not None and schema.normal_value not in values:
            values.insert(0, schema.normal_value)
        self.normal_combo.addItems(values)
        self.normal_combo.setCurrentText(schema.normal_value or "")

    # -- the analyst's changes -------------------------------------------------------------------
    def set_role(self, column: str, role: Role) -> None:
        """Change a column's role, as choosing it in the Role cell does."""
        if role is Role.LABEL:
            self.overrides.label_column = column
            self.overrides.normal_value = None
            self.overrides.roles.pop(column, None)
        else:
            self.overrides.roles[column] = role
            if self.effective() is not None and self.effective().label_column == column:
                self.overrides.label_column = ""
        self.refresh()
        self.overrides_changed.emit(self.overrides)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating or item.column() != 1:
            return
        name = self.table.item(item.row(), 0).text()
        try:
            role = Role(item.text().strip().lower())
        except ValueError:
            self.refresh()
            return
        self.set_role(name, role)

    def _label_chosen(self, _index: int = 0) -> None:
        text = self.label_combo.currentText()
        label = "" if text == NO_LABEL else text
        self.overrides.label_column = label
        self.overrides.normal_value = None
        if label:
            self.overrides.roles.pop(label, None)
        self.refresh()
        self.overrides_changed.emit(self.overrides)

    def _normal_chosen(self, _index: int = 0) -> None:
        if self._updating:
            return
        value = self.normal_combo.currentText()
        schema = self.effective()
        if schema is None or not schema.label_column or value == schema.normal_value:
            return
        self.overrides.normal_value = value
        self.refresh()
        self.overrides_changed.emit(self.overrides)
