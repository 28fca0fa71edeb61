"""The detector settings form: only the chosen detector's parameters.

The fields, their defaults, ranges, choices and tooltips come from the engine's declaration of each
detector's parameters (engine.detectors.params), which imports no torch, so building the form on the GUI
thread stays fast. Layer lists are edited as text such as ``64-32-8``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator, QRegularExpressionValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from engine.detectors import DETECTOR_NAMES
from engine.detectors.params import Param, form_params
from ui.widgets import ScrollSafeComboBox, ScrollSafeSpinBox


def detector_names() -> list[str]:
    return list(DETECTOR_NAMES)


def param_specs(detector: str) -> tuple[Param, ...]:
    """The parameters the form shows for ``detector`` (seed and device are set beside the form)."""
    return form_params(detector)


def tooltip(spec: Param) -> str:
    return f"{spec.help}. Takes {spec.allowed()}; default {_shown(spec.default)}."


def format_layers(value) -> str:
    return "-".join(str(int(v)) for v in value)


def parse_layers(text: str) -> list[int]:
    parts = [p for p in text.replace(",", "-").replace(" ", "-").split("-") if p]
    return [int(p) for p in parts]


class DetectorForm(QWidget):
    """A QFormLayout of the chosen detector's settings; ``values()`` returns the params dict with only
    the values the analyst changed from the defaults."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.detector = ""
        self.specs: tuple[Param, ...] = ()
        self.editors: dict[str, QWidget] = {}

    def set_detector(self, detector: str, values: dict[str, Any] | None = None) -> None:
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.editors = {}
        self.detector = detector
        self.specs = param_specs(detector)
        values = values or {}
        if not self.specs:
            self.layout_.addRow(QLabel("this detector has no settings"))
        for spec in self.specs:
            editor = self._editor(spec, values.get(spec.name, spec.default))
            editor.setObjectName(f"param_{spec.name}")
            editor.setToolTip(tooltip(spec))
            self.editors[spec.name] = editor
            label = QLabel(spec.name.replace("_", " "))
            label.setToolTip(tooltip(spec))
            self.layout_.addRow(label, editor)

    def _editor(self, spec: Param, value: Any) -> QWidget:
        if spec.kind == "bool":
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(self.changed)
            return w
        if spec.choices:
            w = ScrollSafeComboBox()
            items = [str(c) for c in spec.choices]
            if value is not None and str(value) not in items:
                items.insert(0, str(value))
            w.addItems(items)
            w.setEditable(spec.kind != "str")  # a number or one of the words (gamma, max_samples)
            w.setCurrentText(str(value))
            w.currentTextChanged.connect(self.changed)
            return w
        if spec.kind == "layers":
            w = QLineEdit(format_layers(value) if value else "")
            w.setValidator(QRegularExpressionValidator(r"^\s*(\d+(\s*[-, ]\s*\d+)*)?\s*$"))
            w.setPlaceholderText("e.g. 64-32-8 (empty: sized from the data)" if spec.optional else "e.g. 64-32-8")
            w.textChanged.connect(self.changed)
            return w
        if spec.kind == "int" and not spec.optional:
            w = ScrollSafeSpinBox()
            w.setRange(int(spec.low) if spec.low is not None else 0,
                       int(spec.high) if spec.high is not None else 1_000_000_000)
            w.setValue(int(value) if isinstance(value, (int, float)) else spec.default)
            w.valueChanged.connect(self.changed)
            return w
        if spec.kind == "names":
            w = QLineEdit(", ".join(value) if value else "")
        else:
            w = QLineEdit("" if value is None else repr(value) if spec.kind in ("int", "float") else str(value))
        if spec.kind == "int":
            w.setValidator(QRegularExpressionValidator(r"^\s*\d*\s*$"))
        elif spec.kind == "float":
            v = QDoubleValidator()
            v.setNotation(QDoubleValidator.Notation.ScientificNotation)
            w.setValidator(v)
        w.setPlaceholderText("auto" if spec.optional else "")
        w.textChanged.connect(self.changed)
        return w

    def _value(self, spec: Param, editor: QWidget) -> Any:
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            text = editor.currentText()
            return text if spec.kind == "str" else _number_or_text(text)
        if isinstance(editor, QSpinBox):
            return editor.value()
        text = editor.text().strip()
        if text == "":
            return spec.default
        if spec.kind == "layers":
            return parse_layers(text)
        if spec.kind == "names":
            return [m.strip() for m in text.replace(";", ",").split(",") if m.strip()]
        if spec.kind == "int":
            return int(text)
        if spec.kind == "float":
            return float(text)
        return text

    def values(self, only_changed: bool = True) -> dict[str, Any]:
        out = {}
        for spec in self.specs:
            v = self._value(spec, self.editors[spec.name])
            if not only_changed or v != spec.default:
                out[spec.name] = v
        return out

    def set_value(self, name: str, value: Any) -> None:
        editor = self.editors[name]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            editor.setCurrentText(str(value))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        elif isinstance(value, (list, tuple)):
            editor.setText(format_layers(value) if all(isinstance(v, int) for v in value) else ", ".join(value))
        else:
            editor.setText(str(value))


def _shown(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _number_or_text(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
