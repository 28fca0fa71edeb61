"""The Queue/Review screen: the scored records, filters, keyboard verdicts, notes, the counter and
"Retrain with verdicts"."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.queue_model import FIXED_HEADERS, QueueFilter, QueueModel
from ui.widgets import job_controls

CHEAT_SHEET = ("<b>Keys</b>: <b>A</b> anomaly · <b>N</b> normal · <b>U</b> unsure · <b>Z</b> undo · "
               "<b>↑/↓</b> or <b>J/K</b> move · <b>Enter</b> note · <b>Esc</b> back to the queue")
ANY_VERDICT = "any verdict"
ANY_REASON = "any reason"


class QueueView(QTableView):
    """Fixed row heights (never ResizeToContents: 28 s at 100k rows)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("queueView")
        vh = self.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(22)
        vh.setVisible(False)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setDefaultSectionSize(95)
        hh.setHighlightSections(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # several rows (Shift/Ctrl+click, Shift+arrows) take one verdict together (a bulk verdict)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(False)
        self.setWordWrap(False)
        self.setTabKeyNavigation(False)


class ReviewPanel(QWidget):
    verdict_requested = Signal(str)  # "anomaly" | "normal" | "unsure"
    bulk_verdict_requested = Signal(str)  # A/N/U with several rows selected: that verdict for all of them
    bulk_dialog_requested = Signal()  # "Verdict for selection…": choose verdict, note, reason and scope
    undo_requested = Signal()
    note_entered = Signal(str)
    reason_chosen = Signal(str)  # a reason for the selected record (saved at once, that record only)
    retrain_requested = Signal()
    next_batch_requested = Signal()
    cancel_retrain_requested = Signal()
    current_record_changed = Signal(int)  # record index, -1 when none

    def __init__(self, model: QueueModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.view = QueueView()
        self.view.setModel(model)
        self.view.setSortingEnabled(False)
        self.view.horizontalHeader().setSortIndicatorShown(True)
        self.view.horizontalHeader().setSectionsClickable(True)
        self.view.horizontalHeader().sortIndicatorChanged.connect(self._sort_clicked)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        self.view.installEventFilter(self)
        model.modelReset.connect(self._after_reset)
        model.layoutChanged.connect(self._update_counter)
        model.dataChanged.connect(self._update_counter)

        # filters
        self.flagged_check = QCheckBox("Flagged only")
        self.flagged_check.setObjectName("flaggedOnly")
        self.unreviewed_check = QCheckBox("Not reviewed")
        self.unreviewed_check.setObjectName("notReviewed")
        self.verdict_combo = QComboBox()
        self.verdict_combo.setObjectName("verdictFilter")
        self.verdict_combo.addItems([ANY_VERDICT, "anomaly", "normal", "unsure"])
        self.column_combo = QComboBox()
        self.column_combo.setObjectName("columnFilter")
        self.column_combo.setMinimumWidth(110)
        self.value_edit = QLineEdit()
        self.value_edit.setObjectName("valueFilter")
        self.value_edit.setPlaceholderText("value, or >100 / <=5")
        self.search_edit = QLineEdit()
        self.search_edit.setObjectName("textFilter")
        self.search_edit.setPlaceholderText("search text…")
        self.search_edit.setClearButtonEnabled(True)
        # the review's own filters: rules, reviewer, reason, note text
        self.user = None  # who "me" is for "Reviewed by me": a name, or a callable giving it (set by the window)
        self.ruled_check = QCheckBox("Covered by a rule")
        self.ruled_check.setObjectName("ruledOnly")
        self.ruled_check.setToolTip("records a rule treats as normal: they are never flagged")
        self.mine_check = QCheckBox("Reviewed by me")
        self.mine_check.setObjectName("reviewedByMe")
        self.reason_filter = QComboBox()
        self.reason_filter.setObjectName("reasonFilter")
        self.reason_filter.addItem(ANY_REASON)
        self.note_filter = QLineEdit()
        self.note_filter.setObjectName("noteFilter")
        self.note_filter.setPlaceholderText("note contains…")
        self.note_filter.setClearButtonEnabled(True)
        self.bulk_button = QPushButton("Verdict for selection…")
        self.bulk_button.setObjectName("bulkVerdict")
        self.bulk_button.setToolTip("one verdict, note and reason for the selected rows or every record the "
                                    "filters show (asks first; one undo takes it back)")
        self.bulk_button.clicked.connect(self.bulk_dialog_requested)
        for w in (self.ruled_check, self.mine_check):
            w.toggled.connect(self.apply_filters)
        self.reason_filter.currentIndexChanged.connect(self.apply_filters)
        clear = QPushButton("Clear filters")
        clear.clicked.connect(self.clear_filters)
        # a set of records sent from another screen (Compare: flagged by one detector, not another)
        self.records_subset = None
        self.subset_label = QLabel("")
        self.subset_label.setObjectName("recordSubset")
        self.subset_label.setStyleSheet("background:#e8f0fb; padding:2px 6px;")
        self.subset_label.setVisible(False)
        self.subset_clear = QPushButton("Show all records")
        self.subset_clear.setObjectName("clearRecordSubset")
        self.subset_clear.setVisible(False)
        self.subset_clear.clicked.connect(lambda: self.show_records(None))
        for w in (self.flagged_check, self.unreviewed_check):
            w.toggled.connect(self.apply_filters)
        self.verdict_combo.currentIndexChanged.connect(self.apply_filters)
        self.column_combo.currentIndexChanged.connect(self._column_filter_changed)
        # text filters run after a pause in typing, not per key press (1M-row searches)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(250)
        self._filter_timer.timeout.connect(self.apply_filters)
        self.value_edit.textChanged.connect(self._filter_timer.start)
        self.note_filter.textChanged.connect(self._filter_timer.start)
        self.search_edit.textChanged.connect(self._filter_timer.start)
        self.value_edit.returnPressed.connect(self.apply_filters)
        self.search_edit.returnPressed.connect(self.apply_filters)
        filters = QHBoxLayout()
        filters.addWidget(self.flagged_check)
        filters.addWidget(self.unreviewed_check)
        filters.addWidget(self.verdict_combo)
        filters.addWidget(QLabel("where"))
        filters.addWidget(self.column_combo)
        filters.addWidget(self.value_edit)
        filters.addWidget(self.search_edit, 1)
        filters.addWidget(clear)
        review_filters = QHBoxLayout()
        review_filters.addWidget(self.ruled_check)
        review_filters.addWidget(self.mine_check)
        review_filters.addWidget(QLabel("reason"))
        review_filters.addWidget(self.reason_filter)
        review_filters.addWidget(self.note_filter, 1)
        review_filters.addWidget(self.bulk_button)
        subset_row = QHBoxLayout()
        subset_row.addWidget(self.subset_label, 1)
        subset_row.addWidget(self.subset_clear)

        # note, counter, cheat sheet, retrain
        self.note_edit = QLineEdit()
        self.note_edit.setObjectName("noteEdit")
        self.note_edit.setPlaceholderText("note on the selected record: Enter saves, Esc goes back")
        self.note_edit.returnPressed.connect(self._note_done)
        self.note_edit.installEventFilter(self)
        self.reason_combo = QComboBox()
        self.reason_combo.setObjectName("reasonCombo")
        self.reason_combo.setToolTip("reason code of the selected record: saved when chosen; Esc goes back")
        self.reason_combo.addItem("")
        self.reason_combo.activated.connect(self._reason_done)
        self.reason_combo.installEventFilter(self)
        note_row = QHBoxLayout()
        note_row.addWidget(QLabel("Note:"))
        note_row.addWidget(self.note_edit, 1)
        note_row.addWidget(QLabel("Reason:"))
        note_row.addWidget(self.reason_combo)

        self.counter = QLabel()
        self.counter.setObjectName("reviewCounter")
        self.cheat_sheet = QLabel(CHEAT_SHEET)
        self.cheat_sheet.setObjectName("cheatSheet")
        self.cheat_sheet.setStyleSheet("background:#f4f4e8; padding:4px; border:1px solid #ddd;")
        self.retrain_button, self.retrain_cancel, self.retrain_progress = job_controls(
            "Retrain with verdicts", self.retrain_requested, self.cancel_retrain_requested, name="retrain")
        self.retrain_button.setEnabled(False)  # until a model is trained
        self.next_batch_button = QPushButton("Next batch")
        self.next_batch_button.setObjectName("nextBatch")
        self.next_batch_button.setToolTip(
            "show only the next 10 records to review (Ctrl+B): after a retrain, the review loop's pick, which "
            "explores other detectors and regions while few anomalies are confirmed")
        self.next_batch_button.setEnabled(False)  # until a model is trained
        self.next_batch_button.clicked.connect(self.next_batch_requested)
        self.retrain_progress.setMaximumWidth(160)
        self.retrain_status = QLabel("")
        # long texts wrap instead of widening the panel (the splitter would squeeze the detail view)
        self.retrain_status.setWordWrap(True)
        self.counter.setWordWrap(True)
        self.auto_retrain = QSpinBox()
        self.auto_retrain.setObjectName("autoRetrain")
        self.auto_retrain.setRange(0, 1000)
        self.auto_retrain.setValue(0)
        self.auto_retrain.setSpecialValueText("auto-retrain: off")
        self.auto_retrain.setPrefix("retrain every ")
        self.auto_retrain.setSuffix(" verdicts")
        self.auto_retrain.setMaximumWidth(190)
        self.auto_retrain.setToolTip("retrain with the verdicts after every N verdicts (0 = off); the selected "
                                     "record stays selected")
        # the counter has a row of its own: beside the retrain controls it was squeezed to a word a line
        bottom = QHBoxLayout()
        bottom.addWidget(self.retrain_status, 1)
        bottom.addWidget(self.retrain_progress)
        bottom.addWidget(self.auto_retrain)
        bottom.addWidget(self.next_batch_button)
        bottom.addWidget(self.retrain_button)
        bottom.addWidget(self.retrain_cancel)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(filters)
        layout.addLayout(review_filters)
        layout.addLayout(subset_row)
        layout.addWidget(self.view, 1)
        layout.addLayout(note_row)
        layout.addWidget(self.cheat_sheet)
        layout.addWidget(self.counter)
        layout.addLayout(bottom)
        self._update_counter()

    # -- filters ---------------------------------------------------------------------------------
    def current_filter(self) -> QueueFilter:
        verdict = self.verdict_combo.currentText()
        column = self.column_combo.currentText() if self.column_combo.currentIndex() > 0 else None
        return QueueFilter(flagged_only=self.flagged_check.isChecked(),
                           not_reviewed=self.unreviewed_check.isChecked(),
                           verdict=None if verdict == ANY_VERDICT else verdict,
                           column=column, column_value=self.value_edit.text().strip(),
                           text=self.search_edit.text().strip(), records=self.records_subset,
                           ruled=self.ruled_check.isChecked(),
                           reviewer=self.reviewer() if self.mine_check.isChecked() else None,
                           reason=self.reason_filter.currentText() if self.reason_filter.currentIndex() > 0 else "",
                           note=self.note_filter.text().strip())

    def reviewer(self) -> str:
        """The name verdicts are recorded under now ("" when none is set)."""
        return str((self.user() if callable(self.user) else self.user) or "")

    def apply_filters(self) -> None:
        self._filter_timer.stop()
        record = self.current_record()
        self.model.apply_filter(self.current_filter())
        self._restore(record)

    def show_records(self, records, description: str = "") -> None:
        """Show only these records (indices) in the queue, with a line saying where they came from;
        ``None`` shows every record again."""
        self.records_subset = None if records is None else np.asarray(records, dtype=np.int64)
        shown = self.records_subset is not None
        n = 0 if records is None else len(self.records_subset)
        self.subset_label.setText(f"Showing {n:,} record(s): {description}" if shown else "")
        self.subset_label.setVisible(shown)
        self.subset_clear.setVisible(shown)
        self.apply_filters()

    def _column_filter_changed(self) -> None:
        if self.value_edit.text().strip():
            self.apply_filters()

    def clear_filters(self) -> None:
        widgets = (self.flagged_check, self.unreviewed_check, self.verdict_combo, self.column_combo,
                   self.value_edit, self.search_edit, self.ruled_check, self.mine_check, self.reason_filter,
                   self.note_filter)
        for w in widgets:
            w.blockSignals(True)
        self.flagged_check.setChecked(False)
        self.unreviewed_check.setChecked(False)
        self.verdict_combo.setCurrentIndex(0)
        self.column_combo.setCurrentIndex(0)
        self.value_edit.clear()
        self.search_edit.clear()
        self.ruled_check.setChecked(False)
        self.mine_check.setChecked(False)
        self.reason_filter.setCurrentIndex(0)
        self.note_filter.clear()
        self.records_subset = None
        self.subset_label.setVisible(False)
        self.subset_clear.setVisible(False)
        for w in widgets:
            w.blockSignals(False)
        self.apply_filters()

    def _after_reset(self) -> None:
        self.column_combo.blockSignals(True)
        self.column_combo.clear()
        self.column_combo.addItem("(column)")
        self.column_combo.addItems(self.model.columns)
        self.column_combo.blockSignals(False)
        header = self.view.horizontalHeader()
        header.resizeSection(0, 70)
        header.resizeSection(1, 80)
        header.resizeSection(2, 75)
        header.resizeSection(3, 140)
        self._update_counter()

    # -- sorting ---------------------------------------------------------------------------------
    def _sort_clicked(self, column: int, order) -> None:
        self.sort(column, order)

    def sort(self, column: int, order=Qt.SortOrder.DescendingOrder) -> None:
        record = self.current_record()
        self.model.sort(column, order)
        header = self.view.horizontalHeader()
        header.blockSignals(True)
        header.setSortIndicator(column, order)
        header.blockSignals(False)
        self._restore(record)

    # -- the current record ----------------------------------------------------------------------
    def current_record(self) -> int:
        idx = self.view.currentIndex()
        if not idx.isValid() or idx.row() >= self.model.rowCount():
            return -1
        return self.model.record_at(idx.row())

    def select_record(self, record: int) -> bool:
        row = self.model.row_of(record)
        if row is None:
            return False
        self.select_row(row)
        return True

    def select_row(self, row: int) -> None:
        if self.model.rowCount() == 0:
            return
        row = max(0, min(row, self.model.rowCount() - 1))
        col = max(0, self.view.currentIndex().column())
        idx = self.model.index(row, col)
        self.view.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.view.scrollTo(idx)

    def _restore(self, record: int) -> None:
        if record >= 0 and not self.select_record(record):
            self.select_row(0)
        elif self.view.currentIndex().isValid():
            self.view.scrollTo(self.view.currentIndex())
        self._update_counter()

    def _current_changed(self, current, _previous) -> None:
        record = self.model.record_at(current.row()) if current.isValid() else -1
        self.note_edit.setText(self.model.notes.get(record, "") if record >= 0 else "")
        self.current_record_changed.emit(record)

    def selected_records(self) -> list[int]:
        """The records of the selected rows, in queue order."""
        rows = sorted({i.row() for i in self.view.selectionModel().selectedRows()})
        return [self.model.record_at(r) for r in rows if r < self.model.rowCount()]

    def move(self, step: int) -> None:
        idx = self.view.currentIndex()
        self.select_row((idx.row() if idx.isValid() else -1) + step)

    # -- keyboard --------------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() != QEvent.Type.KeyPress:
            return False
        key, mods = event.key(), event.modifiers()
        if obj is self.reason_combo:
            if key == Qt.Key.Key_Escape:
                self.view.setFocus()
                return True
            return False
        if obj is self.note_edit:
            if key == Qt.Key.Key_Escape:
                self.note_edit.setText(self.model.notes.get(self.current_record(), ""))
                self.view.setFocus()
                return True
            return False
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier |
                   Qt.KeyboardModifier.MetaModifier):
            return False
        verdict = {Qt.Key.Key_A: "anomaly", Qt.Key.Key_N: "normal", Qt.Key.Key_U: "unsure"}.get(key)
        if verdict is not None:
            if len(self.view.selectionModel().selectedRows()) > 1:
                self.bulk_verdict_requested.emit(verdict)
            else:
                self.verdict_requested.emit(verdict)
        elif key == Qt.Key.Key_Z:
            self.undo_requested.emit()
        elif key == Qt.Key.Key_J:
            self.move(1)
        elif key == Qt.Key.Key_K:
            self.move(-1)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.current_record() >= 0:
                self.note_edit.setFocus()
                self.note_edit.selectAll()
        else:
            return False
        return True

    def _note_done(self) -> None:
        self.note_entered.emit(self.note_edit.text())
        self.view.setFocus()

    def set_reasons(self, reasons: list[str]) -> None:
        self.reason_combo.clear()
        self.reason_combo.addItem("")
        self.reason_combo.addItems(reasons)
        current = self.reason_filter.currentText()
        self.reason_filter.blockSignals(True)
        self.reason_filter.clear()
        self.reason_filter.addItem(ANY_REASON)
        self.reason_filter.addItems(reasons)
        self.reason_filter.setCurrentIndex(max(0, self.reason_filter.findText(current)))
        self.reason_filter.blockSignals(False)

    def reason(self) -> str:
        return self.reason_combo.currentText()

    def show_reason(self, reason: str) -> None:
        """Show the selected record's reason (not a choice: nothing is sent)."""
        self.reason_combo.blockSignals(True)
        i = self.reason_combo.findText(reason or "")
        if i < 0:
            self.reason_combo.addItem(reason)
            i = self.reason_combo.count() - 1
        self.reason_combo.setCurrentIndex(i)
        self.reason_combo.blockSignals(False)

    def _reason_done(self, _index: int = 0) -> None:
        self.reason_chosen.emit(self.reason_combo.currentText())
        self.view.setFocus()  # back to the queue: N/A/U give verdicts again

    # -- counter and retraining ------------------------------------------------------------------
    def _update_counter(self, *args) -> None:
        c = self.model.counts()
        if c["rows"] == 0:
            self.counter.setText("No records.")
            return
        self.counter.setText(
            f"<b>{c['reviewed']:,}</b> reviewed · <b>{c['flagged']:,}</b> flagged · "
            f"<b>{c['confirmed']:,}</b> confirmed anomalies · {c['normal']:,} normal · {c['unsure']:,} unsure"
            f" · showing {c['shown']:,} of {c['rows']:,}")

    def set_retraining(self, running: bool) -> None:
        self.retrain_button.setEnabled(not running)
        self.retrain_cancel.setEnabled(running)
        if running:
            self.retrain_progress.setValue(0)

    @staticmethod
    def fixed_headers() -> tuple[str, ...]:
        return FIXED_HEADERS
