"""The Review screen's team tools over the session: bulk verdicts, rules from verdicts (dialog and Rules
panel), the review-progress plot and the optional automatic retrain.

Built by the window once its panels exist (``ReviewTools(window)``); everything it changes goes through
``window.session`` (``Session.verdict`` with a list of keys, ``add_rule``/``remove_rule``), so what is
saved is what the panels show.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.feedback import found_curve
from engine.rules import OPERATORS, SYMBOLS, Condition, Rule, RuleError
from ui.plots import ANOMALY, LINE, line_plot_item
from ui.widgets import counted

VERDICT_CHOICES = ("anomaly", "normal", "unsure")
STATIC_NAME = "static ranking would have found (labels)"
NO_RULES = "No rules yet: \"Treat records like this as normal…\" in the record panel proposes one."


# ----------------------------------------------------------------------------------------------
# bulk verdicts
# ----------------------------------------------------------------------------------------------
class BulkVerdictDialog(QDialog):
    """One verdict, note and reason for the selected rows or for every record the filters show."""

    def __init__(self, parent, n_selected: int, n_shown: int, reasons: list[str]):
        super().__init__(parent)
        self.setObjectName("bulkVerdictDialog")
        self.setWindowTitle("Verdict for several records")
        self.verdict = QComboBox()
        self.verdict.setObjectName("bulkVerdictChoice")
        self.verdict.addItems(VERDICT_CHOICES)
        self.note = QLineEdit()
        self.note.setObjectName("bulkNote")
        self.note.setPlaceholderText("blank keeps each record's own note")
        self.reason = QComboBox()
        self.reason.setObjectName("bulkReason")
        self.reason.setEditable(True)
        self.reason.addItems(["", *reasons])
        self.selected = QRadioButton(f"the {counted(n_selected, 'selected row')}")
        self.selected.setObjectName("bulkScopeSelected")
        self.shown = QRadioButton(f"every record the filters show ({n_shown:,})")
        self.shown.setObjectName("bulkScopeShown")
        group = QButtonGroup(self)
        group.addButton(self.selected)
        group.addButton(self.shown)
        (self.selected if n_selected > 1 else self.shown).setChecked(True)
        self.selected.setEnabled(n_selected > 0)
        form = QFormLayout(self)
        form.addRow("Verdict", self.verdict)
        form.addRow("Note", self.note)
        form.addRow("Reason", self.reason)
        form.addRow("For", self.selected)
        form.addRow("", self.shown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


# ----------------------------------------------------------------------------------------------
# rules
# ----------------------------------------------------------------------------------------------
class RuleDialog(QDialog):
    """A proposed rule, editable: its name and its conditions (column, operator, value)."""

    def __init__(self, parent, rule: Rule, columns: list[str]):
        super().__init__(parent)
        self.setObjectName("ruleDialog")
        self.setWindowTitle("Treat records like this as normal")
        self.base = rule
        self.columns = columns
        self.name = QLineEdit(rule.name)
        self.name.setObjectName("ruleName")
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("ruleConditions")
        self.table.setHorizontalHeaderLabels(["Column", "Operator", "Value"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for c in rule.conditions:
            self.add_condition(c)
        add = QPushButton("Add condition")
        add.setObjectName("addCondition")
        add.clicked.connect(lambda: self.add_condition(Condition(columns[0] if columns else "", "equals", "")))
        remove = QPushButton("Remove condition")
        remove.setObjectName("removeCondition")
        remove.clicked.connect(lambda: self.table.removeRow(max(self.table.currentRow(), self.table.rowCount() - 1)))
        self.error = QLabel("")
        self.error.setObjectName("ruleError")
        self.error.setStyleSheet("color:#c00")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Records matching <b>every</b> condition leave the flagged queue "
                                "(the filter \"Covered by a rule\" still shows them)."))
        form = QFormLayout()
        form.addRow("Name", self.name)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(560, 300)

    def add_condition(self, c: Condition) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        column = QComboBox()
        column.setEditable(True)
        column.addItems(self.columns)
        column.setCurrentText(c.column)
        op = QComboBox()
        for name in OPERATORS:
            op.addItem(f"{SYMBOLS[name]} ({name.replace('_', ' ')})", name)
        op.setCurrentIndex(OPERATORS.index(c.op))
        value = QLineEdit(f"{c.value:g}" if isinstance(c.value, float) else str(c.value))
        self.table.setCellWidget(r, 0, column)
        self.table.setCellWidget(r, 1, op)
        self.table.setCellWidget(r, 2, value)

    def set_condition(self, row: int, column: str | None = None, op: str | None = None, value: str | None = None):
        """Edit one condition as the analyst would (the tests use it)."""
        if column is not None:
            self.table.cellWidget(row, 0).setCurrentText(column)
        if op is not None:
            self.table.cellWidget(row, 1).setCurrentIndex(OPERATORS.index(op))
        if value is not None:
            self.table.cellWidget(row, 2).setText(value)

    def rule(self) -> Rule:
        """The rule as edited (engine.rules.Rule.from_dict checks every field)."""
        conditions = []
        for r in range(self.table.rowCount()):
            op = self.table.cellWidget(r, 1).currentData()
            text = self.table.cellWidget(r, 2).text().strip()
            value: str | float = text
            if op != "equals":
                try:
                    value = float(text.replace(",", ""))
                except ValueError:
                    raise RuleError(f"condition {r + 1}: '{text}' is not a number") from None
            conditions.append({"column": self.table.cellWidget(r, 0).currentText(), "op": op, "value": value})
        d = {**self.base.to_dict(), "name": self.name.text().strip(), "conditions": conditions}
        return Rule.from_dict(d, where="the rule")

    def accept(self) -> None:
        try:
            self.result_rule = self.rule()
        except RuleError as exc:
            self.error.setText(str(exc))
            return
        super().accept()


class RulesPanel(QWidget):
    """The rules in force: each with its description and how many records it covers; Remove."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("rulesPanel")
        self.list = QListWidget()
        self.list.setObjectName("rulesList")
        self.remove_button = QPushButton("Remove rule")
        self.remove_button.setObjectName("removeRule")
        self.remove_button.setEnabled(False)
        self.list.currentRowChanged.connect(lambda r: self.remove_button.setEnabled(r >= 0))
        self.summary = QLabel(NO_RULES)
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.remove_button)
        layout.addLayout(row)

    def set_rules(self, rules: list[Rule], counts: dict[str, int], covered: int) -> None:
        self.list.clear()
        for rule in rules:
            item = QListWidgetItem(f"{rule.name}: {rule.describe()} · {counted(counts.get(rule.name, 0), 'record')}")
            item.setData(Qt.ItemDataRole.UserRole, rule.name)
            item.setToolTip(f"by {rule.author or 'unknown'}, {rule.created or ''}; from record {rule.source_key}")
            self.list.addItem(item)
        if rules:
            self.summary.setText(f"{counted(len(rules), 'rule')} in force: {covered:,} record(s) treated as normal "
                                 "(never flagged).")
        else:
            self.summary.setText(NO_RULES)
        self.remove_button.setEnabled(self.list.currentRow() >= 0)

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)


# ----------------------------------------------------------------------------------------------
# what the verdicts bought (issue 18)
# ----------------------------------------------------------------------------------------------
def confirmed_per_review(audit) -> np.ndarray:
    """Anomalies confirmed after each review, in the order the verdicts were given (the audit's order):
    entry i is the number of records holding "anomaly" once i + 1 records were reviewed. Undos and
    changed verdicts are replayed, so the curve ends at today's counts."""
    state: dict[str, str] = {}
    reviewed, out = 0, []
    anomalies = 0
    for e in audit:
        old, new = state.get(e.key), e.new or None
        if old == new:
            continue
        anomalies += (new == "anomaly") - (old == "anomaly")
        if new:
            state[e.key] = new
        else:
            state.pop(e.key, None)
        if len(state) > reviewed:  # a record reviewed for the first time: one more review
            reviewed = len(state)
            out.append(anomalies)
        elif out:
            out[-1] = anomalies
    return np.asarray(out[:reviewed], dtype=np.int64)


def static_found(static_scores: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """What the static ranking finds in its first 1..n reviews: labelled anomalies among its top k."""
    order = np.argsort(-np.nan_to_num(np.asarray(static_scores, dtype=float), nan=-np.inf), kind="stable")[:n]
    return found_curve(np.asarray(labels, dtype=bool)[order])


class ReviewProgressPlot(pg.PlotWidget):
    """Anomalies confirmed per review so far; the static ranking's count beside it when labels exist."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("reviewProgressPlot")
        item = line_plot_item(self, "anomalies confirmed per review", "reviews", "anomalies", grid=True,
                              legend_offset=(5, 5))
        self.found = item.plot([], [], pen=pg.mkPen(ANOMALY, width=2), name="your verdicts")
        self.static = item.plot([], [], pen=pg.mkPen(LINE, width=1.5, style=Qt.PenStyle.DashLine))
        self.static.setVisible(False)  # in the legend only while shown (a file with a label column)

    def set_progress(self, found: np.ndarray, static: np.ndarray | None) -> None:
        x = np.arange(1, len(found) + 1, dtype=float)
        self.found.setData(x, found.astype(float))
        show = static is not None and len(static) > 0
        if show:
            self.static.setData(np.arange(1, len(static) + 1, dtype=float), static.astype(float))
        else:
            self.static.setData([], [])
        if show != self.static.isVisible():
            if show:
                self.legend.addItem(self.static, STATIC_NAME)
            else:
                self.legend.removeItem(self.static)
        self.static.setVisible(show)


# ----------------------------------------------------------------------------------------------
# the controller
# ----------------------------------------------------------------------------------------------
class ReviewTools(QObject):
    """Wires the tools above to the window and its session."""

    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self.rule_dialog: RuleDialog | None = None
        self.bulk_dialog: BulkVerdictDialog | None = None
        self.confirm_box: QMessageBox | None = None  # while a confirmation is open (tests answer it)
        self.since_retrain = 0  # verdicts given since the last retrain (automatic retrain)
        panel = window.review_panel
        # the name the verdict store records verdicts under (Settings may change the window's user)
        panel.user = lambda: getattr(window.session.store, "user", None) or window.user
        self.rules_panel = RulesPanel()
        self.progress_plot = ReviewProgressPlot()
        self.side = QTabWidget()
        self.side.setObjectName("reviewSideTabs")
        self.side.addTab(self.progress_plot, "Progress")
        self.side.addTab(self.rules_panel, "Rules")
        # the error plot shares the bottom of the Review screen with the progress plot and the rules
        _top, review = window.review_splitters
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.setObjectName("reviewBottomSplitter")
        review.replaceWidget(1, bottom)
        bottom.addWidget(window.error_plot)
        bottom.addWidget(self.side)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 1)
        bottom.setSizes([900, 380])
        self.bottom = bottom

        panel.bulk_verdict_requested.connect(self.bulk_verdict_keys)
        panel.bulk_dialog_requested.connect(self.open_bulk_dialog)
        panel.verdict_requested.connect(lambda _v: self._count_verdicts(1))
        window.detail_panel.rule_requested.connect(self.propose_rule)
        self.rules_panel.remove_button.clicked.connect(self.remove_selected_rule)
        window.session.events.connect("rules", self.rules_changed)
        window.session.events.connect("file", self.refresh_progress)
        window._refresh_timer.timeout.connect(self.refresh_progress)

    @property
    def s(self):
        return self.w.session

    # -- bulk verdicts -----------------------------------------------------------------------------
    def confirm(self, text: str) -> bool:
        """Ask before a bulk change (a QMessageBox, ``confirm_box`` while open)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Verdict for several records", text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.w)
        box.setObjectName("bulkConfirm")
        self.confirm_box = box
        try:
            return box.exec() == QMessageBox.StandardButton.Yes
        finally:
            self.confirm_box = None

    def bulk_verdict_keys(self, verdict: str) -> None:
        """A/N/U with several rows selected: that verdict for all of them (each keeps its note and reason)."""
        self.give(self.w.review_panel.selected_records(), verdict)

    def open_bulk_dialog(self) -> None:
        panel = self.w.review_panel
        selected = panel.selected_records()
        reasons = self.s.store.reasons() if self.s.store is not None else []
        dialog = BulkVerdictDialog(self.w, len(selected), self.w.queue.rowCount(), reasons)
        self.bulk_dialog = dialog

        def done():
            records = selected if dialog.selected.isChecked() else [int(r) for r in self.w.queue.visible]
            self.give(records, dialog.verdict.currentText(), note=dialog.note.text().strip() or None,
                      reason=dialog.reason.currentText().strip() or None)

        dialog.accepted.connect(done)
        dialog.open()

    def give(self, records: list[int], verdict: str, note: str | None = None, reason: str | None = None) -> bool:
        """One verdict for ``records`` in one batch (one undo), after a confirmation saying how many."""
        s = self.s
        if not records or s.store is None:
            return False
        n = len(records)
        if not self.confirm(f"Mark {counted(n, 'record')} as {verdict}?"
                            + (f" Note: {note}." if note else "") + (f" Reason: {reason}." if reason else "")
                            + " One undo (Ctrl+Z) takes them all back."):
            return False
        keys = [str(s.keys[r]) for r in records]
        if not self.w.guard("Verdicts not saved", s.verdict, keys, verdict, note=note, reason=reason):
            return False
        if n <= 500:  # one lookup per record; beyond that re-attaching the whole file is quicker
            for r in records:
                self.w.views.show_verdict_of(r)
        else:
            self.w.views.show_all_verdicts()
        self.w.review_panel._update_counter()
        self.w.status_label.setText(f"Marked {counted(n, 'record')} as {verdict} (Ctrl+Z undoes them all).")
        self.w._refresh_timer.start()
        self._count_verdicts(n)
        return True

    # -- automatic retrain -------------------------------------------------------------------------
    def _count_verdicts(self, n: int) -> None:
        every = self.w.review_panel.auto_retrain.value()
        self.since_retrain += n
        if every > 0 and self.since_retrain >= every and self.s.model is not None \
                and not self.w.jobs.slot("retrain").busy:
            self.since_retrain = 0
            self.w.start_retrain()  # the queue re-selects the analyst's record when the scores change

    # -- rules -------------------------------------------------------------------------------------
    def propose_rule(self, record: int) -> None:
        rule = self.w.guard("Rule", self.s.propose_rule, record)
        if rule in (None, True):
            return
        columns = [str(c) for c in self.s.frame.columns]
        dialog = RuleDialog(self.w, rule, columns)
        self.rule_dialog = dialog
        dialog.accepted.connect(lambda: self.add_rule(dialog.result_rule))
        dialog.open()

    def add_rule(self, rule: Rule) -> None:
        if self.w.guard("Rule not added", self.s.add_rule, rule):
            n = self.s.rule_counts().get(rule.name, 0)
            self.w.status_label.setText(f"Rule added: {rule.describe()} ({counted(n, 'record')} leave the flagged "
                                        "queue; \"Covered by a rule\" shows them).")
            self.side.setCurrentWidget(self.rules_panel)

    def remove_selected_rule(self) -> None:
        name = self.rules_panel.selected_name()
        if name is not None and self.w.guard("Rule not removed", self.s.remove_rule, name):
            self.w.status_label.setText(f"Rule removed: {name}.")

    def rules_changed(self) -> None:
        s = self.s
        self.w.queue.set_ruled(s.ruled)
        covered = int(s.ruled.sum()) if s.ruled is not None else 0
        self.rules_panel.set_rules(s.rules, s.rule_counts(), covered)
        self.w.review_panel._update_counter()
        if s.scores is not None and s.threshold_info is not None:
            self.w.views.show_record(self.w.review_panel.current_record())

    # -- progress ----------------------------------------------------------------------------------
    def refresh_progress(self) -> None:
        s = self.s
        if s.store is None:
            self.progress_plot.set_progress(np.zeros(0, dtype=np.int64), None)
            return
        found = confirmed_per_review(s.store.audit())
        static = None
        if s.labels is not None and s.result is not None and len(found):
            static = static_found(s.result.scores, s.labels, len(found))
        self.progress_plot.set_progress(found, static)
