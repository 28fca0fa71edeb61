"""The detector settings form: only the chosen detector's parameters.

The fields come from the detector class's ``__init__`` signature, read from its source with ``ast``
(importing an autoencoder module would import torch into the GUI thread). Layer lists are edited as
text such as ``64-32-8``.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator, QRegularExpressionValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from ui.widgets import ScrollSafeComboBox, ScrollSafeSpinBox

HIDDEN = {"self", "seed", "device", "random_state", "verbose", "member_params"}
CHOICES = {
    "activation": ["relu", "leaky_relu", "tanh", "elu", "gelu", "selu", "silu", "sigmoid", "softplus"],
    "optimizer": ["adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax"],
    "gamma": ["scale", "auto"],
    "max_samples": ["auto"],
    "loss": ["mse", "mae", "huber"],
    "combine": ["mean", "max", "rank"],
    "weighting": ["agreement", "equal"],
    "lr_schedule": ["constant", "cosine", "step", "plateau", "onecycle"],
    "cell": ["gru", "lstm"],
    "step_layers": ["auto", "shared", "per_step"],
    "tails": ["both", "skew"],
    "aggregate": ["auto", "l2", "l4", "sum"],
}
HELP = {
    "hidden_layers": "sizes of the encoder's layers, e.g. 64-32-8 (the decoder mirrors them)",
    "layers": "layer sizes, e.g. 64-32-8",
    "latent": "size of the bottleneck", "latent_size": "size of the bottleneck", "latent_dim": "size of the bottleneck",
    "learning_rate": "optimizer step size", "lr": "optimizer step size",
    "epochs": "passes over the training rows", "batch_size": "rows per gradient step",
    "dropout": "share of units dropped while training (regularisation)",
    "weight_decay": "L2 penalty on the weights (regularisation)", "l1": "L1 penalty (regularisation)",
    "n_estimators": "number of trees", "nu": "expected share of outliers in the training rows",
    "variance": "share of variance the components keep",
    "l2": "L2 penalty on the weights (regularisation)",
    "members": "detectors to combine, comma separated (empty: chosen from the data)",
    "early_stopping": "stop after this many epochs without validation improvement (0: never)",
    "window": "0: each row is a sequence (its numeric columns are the time steps); 2 or more: the file is "
              "time-ordered and windows of this many consecutive rows are the sequences",
    "cell": "recurrent cell of the encoder and decoder", "bidirectional": "read each sequence in both directions",
    "hidden_size": "units of the recurrent layers", "num_layers": "stacked recurrent layers",
    "step_layers": "output layer per time step or shared (auto: per step for sequences of up to 32 steps)",
    "discriminator_width": "units of the discriminator's layers",
    "spectral_norm": "spectral normalisation of the discriminator (training stability)",
    "reconstruction_weight": "weight of the reconstruction term in the encoder/generator loss",
    "label_smoothing": "one-sided label smoothing of the discriminator's real pairs",
    "grad_clip": "largest gradient norm per step (0: no clipping)",
    "tails": "both: a value far out in either tail counts in full; skew: only the tail the column's skew points to",
    "undo_log": "split the numeric values on their original scale (the log squeezes the tail where outliers are)",
    "trim": "share of each batch's worst-reconstructed rows left out of training, so anomalies in the "
            "training rows are not learnt as normal (empty: 0.2 on an all-numeric file fitted on itself, else 0)",
    "score": "how a row's reconstruction becomes its score (autoencoder: auto = the likelihood when there "
             "are categorical columns, the plain squared error otherwise; nll; mse. VAE: probability, nll, mse)",
    "aggregate": "how the columns' terms make a row's score: l2 or l4, a norm that lets one very unusual column "
                 "outweigh a row a little off everywhere (l4 the more so); sum, their total (auto: l4 for the plain "
                 "squared error, l2 for the likelihood)",
    "feature_weight": "score share of the discriminator feature-matching distance (the rest: reconstruction)",
}
FALLBACK_SPECS: dict[str, list[tuple[str, Any]]] = {
    # used while a detector's module is not in this build yet
    "autoencoder": [("hidden_layers", [64, 32]), ("latent_size", 8), ("activation", "relu"),
                    ("optimizer", "adam"), ("learning_rate", 1e-3), ("batch_size", 256), ("epochs", 20),
                    ("dropout", 0.0), ("weight_decay", 0.0)],
    "vae": [("hidden_layers", [64, 32]), ("latent_size", 8), ("learning_rate", 1e-3), ("batch_size", 256),
            ("epochs", 20)],
    "iforest": [("n_estimators", 100)],
    "ocsvm": [("nu", 0.5), ("gamma", "scale")],
    "pca": [("variance", 0.9)],
    "ecod": [],
    "auto": [],
}


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    annotation: str = ""  # the source's type annotation, e.g. "list[int] | None"

    @property
    def is_layers(self) -> bool:
        return isinstance(self.default, (list, tuple)) or "list[int]" in self.annotation or \
            "tuple[int" in self.annotation

    @property
    def is_int(self) -> bool:
        return isinstance(self.default, int) and not isinstance(self.default, bool) or (
            self.default is None and self.annotation.replace(" ", "") in ("int|None", "Optional[int]"))

    @property
    def is_float(self) -> bool:
        return isinstance(self.default, float) or (
            self.default is None and self.annotation.replace(" ", "") in ("float|None", "Optional[float]"))


def _registry() -> dict[str, tuple[str, str]]:
    try:
        from engine.detectors import _REGISTRY  # the registry maps names to (module, class)
        return dict(_REGISTRY)
    except ImportError:
        return {}


def detector_names() -> list[str]:
    try:
        from engine.detectors import DETECTOR_NAMES
        names = list(DETECTOR_NAMES)
    except ImportError:
        names = list(FALLBACK_SPECS)
    return names


def param_specs(detector: str) -> list[ParamSpec]:
    """The detector's constructor parameters and defaults, without importing its module."""
    entry = _registry().get(detector)
    if entry is not None:
        specs = _specs_from_source(*entry)
        if specs is not None:
            return [s for s in specs if s.name not in HIDDEN]
    return [ParamSpec(n, d) for n, d in FALLBACK_SPECS.get(detector, [])]


def _specs_from_source(module: str, class_name: str) -> list[ParamSpec] | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        with open(spec.origin, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return _signature_specs(item.args)
            return []
    return None


def _signature_specs(args: ast.arguments) -> list[ParamSpec]:
    specs = []
    positional = args.args[1:]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=False)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=False))
    for arg, default in pairs:
        try:
            value = ast.literal_eval(default) if default is not None else None
        except ValueError:
            value = None
        annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
        specs.append(ParamSpec(arg.arg, value, annotation))
    return specs


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
        self.specs: list[ParamSpec] = []
        self.editors: dict[str, QWidget] = {}

    def set_detector(self, detector: str, values: dict[str, Any] | None = None) -> None:
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.editors = {}
        self.detector = detector
        self.specs = param_specs(detector)
        values = values or {}
        if not self.specs:
            note = ("chooses a detector and its settings from the data" if detector == "auto"
                    else "this detector has no settings")
            self.layout_.addRow(QLabel(note))
        for spec in self.specs:
            editor = self._editor(spec, values.get(spec.name, spec.default))
            editor.setObjectName(f"param_{spec.name}")
            editor.setToolTip(HELP.get(spec.name, ""))
            self.editors[spec.name] = editor
            self.layout_.addRow(spec.name.replace("_", " "), editor)

    def _editor(self, spec: ParamSpec, value: Any) -> QWidget:
        d = spec.default
        if isinstance(d, bool):
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(self.changed)
            return w
        if spec.name in CHOICES:
            w = ScrollSafeComboBox()
            items = list(CHOICES[spec.name])
            if value is not None and str(value) not in items:
                items.insert(0, str(value))
            w.addItems(items)
            w.setEditable(spec.name in ("max_samples", "gamma"))
            w.setCurrentText(str(value))
            w.currentTextChanged.connect(self.changed)
            return w
        if spec.is_layers:
            w = QLineEdit(format_layers(value) if value else "")
            w.setValidator(QRegularExpressionValidator(r"^\s*(\d+(\s*[-, ]\s*\d+)*)?\s*$"))
            w.setPlaceholderText("e.g. 64-32-8 (empty: sized from the data)" if d is None else "e.g. 64-32-8")
            w.textChanged.connect(self.changed)
            return w
        if spec.is_int and d is not None:
            w = ScrollSafeSpinBox()
            w.setRange(0, 1_000_000_000)
            w.setValue(int(value) if isinstance(value, (int, float)) else d)
            w.valueChanged.connect(self.changed)
            return w
        if spec.is_int or spec.is_float:
            w = QLineEdit("" if value is None else repr(value))
            if spec.is_int:
                w.setValidator(QRegularExpressionValidator(r"^\s*\d*\s*$"))
            else:
                v = QDoubleValidator()
                v.setNotation(QDoubleValidator.Notation.ScientificNotation)
                w.setValidator(v)
            w.setPlaceholderText("auto" if d is None else "")
            w.textChanged.connect(self.changed)
            return w
        w = QLineEdit("" if value is None else str(value))
        w.setPlaceholderText("auto" if d is None else "")
        w.textChanged.connect(self.changed)
        return w

    def _value(self, spec: ParamSpec, editor: QWidget) -> Any:
        d = spec.default
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            return _number_or_text(editor.currentText())
        if isinstance(editor, QSpinBox):
            return editor.value()
        text = editor.text().strip()
        if spec.is_layers:
            return parse_layers(text) if text else (list(d) if isinstance(d, tuple) else d)
        if text == "":
            return d
        if spec.is_int:
            return int(text)
        if spec.is_float:
            return float(text)
        if spec.name == "members":
            return [m.strip() for m in text.replace(";", ",").split(",") if m.strip()]
        return _number_or_text(text)

    def values(self, only_changed: bool = True) -> dict[str, Any]:
        out = {}
        for spec in self.specs:
            v = self._value(spec, self.editors[spec.name])
            default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
            if not only_changed or v != default:
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
            editor.setText(format_layers(value))
        else:
            editor.setText(str(value))


def _number_or_text(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
