"""Every detector's parameters, declared once (as scikit-learn's ``_parameter_constraints``).

Each ``Param`` says a constructor argument's name, type, default, allowed range or choices and a line of
help. The settings form, the command line's ``--param``, ``make_detector``'s validation and the model
bundle all read this table, and a test holds its names and defaults equal to each detector class's
``__init__`` signature. The module imports no torch (the GUI builds its form from it on the GUI thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any

from engine.errors import AnomalyDeskError

#: choices shared with engine.training (which maps them to torch classes)
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "gelu", "selu", "sigmoid", "silu", "softplus")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax")
SCHEDULES = ("constant", "cosine", "step", "plateau", "onecycle")
KINDS = ("int", "float", "bool", "str", "layers", "names", "mapping")


@dataclass(frozen=True)
class Param:
    """One constructor argument. ``kind``: int, float, bool, str (one of ``choices``), layers (a list of
    positive sizes), names (a list of detector names) or mapping (a dict). ``low``/``high`` bound numbers
    (``low_open``/``high_open``: the bound itself is excluded). ``choices`` on a number are words it also
    accepts (``gamma="scale"``). ``optional``: None is allowed and means "chosen from the data".
    ``form``: shown in the detector settings form (seed, device and nested member settings are set
    elsewhere)."""

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False
    form: bool = True

    def allowed(self) -> str:
        """The allowed values in words, for error messages and tooltips."""
        parts = []
        if self.kind in ("int", "float") and (self.low is not None or self.high is not None):
            lo = "" if self.low is None else f"{_num(self.low)} {'<' if self.low_open else '<='} "
            hi = "" if self.high is None else f" {'<' if self.high_open else '<='} {_num(self.high)}"
            parts.append(f"{'an integer' if self.kind == 'int' else 'a number'} {lo}x{hi}")
        elif self.kind in ("int", "float"):
            parts.append("an integer" if self.kind == "int" else "a number")
        elif self.kind == "bool":
            parts.append("true or false")
        elif self.kind == "layers":
            parts.append("a list of positive layer sizes such as 64-32-8")
        elif self.kind == "names":
            parts.append("a list of detector names")
        elif self.kind == "mapping":
            parts.append("a mapping")
        if self.choices:
            words = ", ".join(str(c) for c in self.choices)
            parts.append(f"one of {words}" if self.kind == "str" else f"or one of {words}")
        if self.optional:
            parts.append("or empty (chosen from the data)")
        return " ".join(parts)

    def check(self, value: Any, detector: str) -> None:
        """Raise AnomalyDeskError naming the detector, the parameter and what it allows."""
        if not self._ok(value):
            raise AnomalyDeskError(f"{detector}: {self.name} = {value!r} is not allowed; it takes {self.allowed()}")

    def _ok(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind == "bool":
            return isinstance(value, bool) or type(value).__name__ == "bool_"
        if self.kind in ("int", "float"):
            if isinstance(value, str):
                return value.lower() in {str(c).lower() for c in self.choices}
            if isinstance(value, bool) or not isinstance(value, Real):
                return False
            if self.kind == "int" and not isinstance(value, Integral):
                return False
            return math.isfinite(float(value)) and self._in_range(float(value))
        if self.kind == "str":
            if self.name == "device" and str(value).lower().startswith("cuda:"):
                return True
            return str(value).lower() in {str(c).lower() for c in self.choices}
        if self.kind == "layers":
            return isinstance(value, list | tuple) and all(
                isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in value)
        if self.kind == "names":
            return isinstance(value, list | tuple) and len(value) > 0 and all(
                isinstance(v, str) and v in PARAMS and v != "auto" for v in value)
        if self.kind == "mapping":
            return isinstance(value, dict)
        raise AssertionError(self.kind)

    def _in_range(self, x: float) -> bool:
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        return not (self.high is not None and (x > self.high or (self.high_open and x == self.high)))

    def parse(self, text: str, detector: str) -> Any:
        """A value from text (the command line's ``--param name=value``), checked."""
        t = text.strip()
        if t.lower() in ("", "none", "auto") and self.optional:
            value: Any = None
        elif self.kind == "bool":
            if t.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise AnomalyDeskError(f"{detector}: {self.name} = {t!r} is not allowed; it takes {self.allowed()}")
            value = t.lower() in ("true", "1", "yes")
        elif self.kind in ("int", "float"):
            value = _number(t, self.kind)
        elif self.kind == "layers":
            parts = [p for p in t.replace(",", "-").replace(" ", "-").split("-") if p]
            value = [int(p) if p.isdigit() else p for p in parts]
        elif self.kind == "names":
            value = [p.strip() for p in t.replace(";", ",").split(",") if p.strip()]
        elif self.kind == "mapping":
            raise AnomalyDeskError(f"{detector}: {self.name} cannot be set from the command line")
        else:
            value = t
        self.check(value, detector)
        return value


def _num(x: float) -> str:
    return f"{x:g}"


def _number(text: str, kind: str) -> Any:
    for cast in ((int,) if kind == "int" else (int, float)):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


# -- shared declarations ---------------------------------------------------------------------------------
SEED = Param("seed", "int", 0, "random seed: the same seed gives the same model", low=0, form=False)
DEVICE = Param("device", "str", "auto", "where to train: auto (a CUDA GPU when present), cpu or cuda",
               choices=("auto", "cpu", "cuda", "mps"), form=False)
EPOCHS = Param("epochs", "int", None, "passes over the training rows (empty: chosen from the table's size)",
               low=1, optional=True)
HIDDEN_LAYERS = Param("hidden_layers", "layers", None,
                      "sizes of the encoder's layers, e.g. 64-32-8; the decoder mirrors them (empty: sized from "
                      "the data)", optional=True)
LATENT_DIM = Param("latent_dim", "int", None, "size of the bottleneck code (empty: chosen from the data)",
                   low=1, optional=True)
DROPOUT = Param("dropout", "float", 0.0, "share of units dropped while training (regularisation)",
                low=0.0, high=1.0, high_open=True)
LEARNING_RATE = Param("learning_rate", "float", 1e-2, "optimizer step size", low=0.0, low_open=True)
BATCH_SIZE = Param("batch_size", "int", 4096, "rows per gradient step (small tables use smaller batches)", low=1)
VALIDATION_FRACTION = Param("validation_fraction", "float", 0.1,
                            "share of the training rows held out to judge early stopping",
                            low=0.0, high=1.0, high_open=True)
EARLY_STOPPING = Param("early_stopping", "int", 5,
                       "stop after this many epochs without validation improvement (0: never)", low=0)
INPUT_NOISE = Param("input_noise", "float", 0.0, "Gaussian noise added to the inputs while training (denoising)",
                    low=0.0)

_NETWORK = (
    HIDDEN_LAYERS, LATENT_DIM,
    Param("activation", "str", "relu", "activation function of the hidden layers", choices=ACTIVATIONS),
    DROPOUT,
    Param("batch_norm", "bool", False, "batch normalisation after each hidden layer"),
    Param("optimizer", "str", "adam", "gradient-descent method", choices=OPTIMIZERS),
    LEARNING_RATE,
    Param("lr_schedule", "str", "cosine", "how the learning rate changes over training", choices=SCHEDULES),
    Param("momentum", "float", 0.9, "momentum of the sgd optimizer", low=0.0, high=1.0),
    BATCH_SIZE, EPOCHS,
    Param("l1", "float", 0.0, "L1 penalty on the weights (regularisation)", low=0.0),
    Param("l2", "float", 0.0, "L2 penalty on the weights (regularisation)", low=0.0),
    VALIDATION_FRACTION, EARLY_STOPPING,
)
_AGGREGATE_HELP = ("how the columns' terms make a row's score: l2 or l4, a norm that lets one very unusual column "
                   "outweigh a row a little off everywhere (l4 the more so); sum, their total")

def _NEIGHBORS(scaling: str) -> tuple[Param, ...]:  # noqa: N802 - a table, like the constants around it
    return (
        Param("n_neighbors", "int", 20, "neighbours whose distances make the score", low=1),
        Param("max_reference_rows", "int", 10000, "training rows kept as the neighbours' reference (a uniform "
              "sample beyond this)", low=2),
        Param("scaling", "str", scaling, "minmax: the unlogged values scaled to the training range per feature; "
              "encoded: the engine's encoding (robust-scaled, logged amounts)", choices=("minmax", "encoded")),
        SEED,
    )


PARAMS: dict[str, tuple[Param, ...]] = {
    "auto": (
        Param("members", "names", None, "detectors to combine, comma separated (empty: chosen from the data)",
              optional=True),
        Param("member_params", "mapping", None, "settings per member: {name: {parameter: value}}",
              optional=True, form=False),
        Param("weighting", "str", "agreement",
              "member weights for the mean and the contributions: agreement (how well a member agrees with the "
              "others on the training rows) or equal", choices=("agreement", "equal")),
        Param("combination", "str", None,
              "how the members' standardised scores combine (empty: chosen from the table and whether the rows "
              "are a clean reference): median (one member wrong either way cannot move it), mean (weighted) or "
              "max (the most alarmed member)", choices=("median", "mean", "max"), optional=True),
        Param("standardize", "str", None,
              "how each member's score is made comparable (empty: chosen like the combination): z, a robust "
              "z-score of its training scores, tail, scaled by the reach of their top 0.1%, or rank, its rank "
              "among them", choices=("z", "rank", "tail"), optional=True),
        Param("reference", "bool", False, "the training rows are a clean reference file (set by the app when "
              "training on one): members and combination follow the reference-file rule", form=False),
        Param("agreement_rows", "int", 20000, "training rows used to measure the members' agreement", low=2),
        Param("max_fit_rows", "int", 100_000, "members learn from at most this many rows (a uniform sample); "
              "every row is still scored", low=2),
        SEED, DEVICE,
        Param("epochs", "int", None, "passes over the training rows for the deep members (empty: their own default)",
              low=1, optional=True),
    ),
    "autoencoder": _NETWORK + (
        Param("score", "str", "auto",
              "how a row's reconstruction becomes its score: auto (the likelihood when there are categorical "
              "columns, the plain squared error otherwise), nll or mse", choices=("auto", "nll", "mse")),
        INPUT_NOISE,
        Param("masking", "str", "auto",
              "train by hiding column groups and predicting them from the rest (auto: on for tables with "
              "categorical columns)", choices=("auto", "true", "false")),
        Param("mask_rate", "float", 0.2, "chance that a column group is hidden in a training row",
              low=0.0, high=1.0, low_open=True, high_open=True),
        Param("numeric_variance", "str", "auto",
              "learn a variance per numeric value, so the score weighs each error by its expected size (auto: "
              "with masking)", choices=("auto", "true", "false")),
        Param("numeric_loss", "str", "mse", "training loss of the numeric values", choices=("mse", "huber")),
        Param("aggregate", "str", "auto", _AGGREGATE_HELP + " (auto: l4 for the plain squared error, l2 for the "
              "likelihood)", choices=("auto", "l2", "l4", "sum")),
        Param("trim", "float", None,
              "share of each batch's worst-reconstructed rows left out of training, so anomalies in the "
              "training rows are not learnt as normal (empty: 0.2 on an all-numeric file fitted on itself, "
              "else 0)", low=0.0, high=1.0, high_open=True, optional=True),
        Param("precision", "str", "fp32",
              "training arithmetic: fp32, bf16 (bfloat16 forward passes) or auto (bf16 on CPUs with fast "
              "bf16 for large tables)", choices=("fp32", "bf16", "auto")),
        DEVICE, SEED,
    ),
    "vae": tuple(replace(p, default={"learning_rate": 3e-3, "batch_size": 512}.get(p.name, p.default))
                 for p in _NETWORK) + (
        Param("score", "str", "probability",
              "probability: the expected negative log-likelihood over several latent draws; error (or nll): the "
              "same terms from the posterior mean only; mse: the plain squared error",
              choices=("probability", "error", "nll", "mse")),
        Param("n_samples", "int", 10, "latent draws per row for the reconstruction probability", low=1),
        Param("beta", "float", 1.0, "weight of the KL divergence in the loss", low=0.0),
        INPUT_NOISE,
        Param("aggregate", "str", "l2", _AGGREGATE_HELP, choices=("auto", "l2", "l4", "sum")),
        DEVICE, SEED,
    ),
    "bigan": (
        HIDDEN_LAYERS, LATENT_DIM,
        Param("discriminator_width", "int", 64, "units of the discriminator's layers", low=1),
        replace(DROPOUT, default=0.2, help="share of the discriminator's units dropped while training"),
        Param("spectral_norm", "bool", True, "spectral normalisation of the discriminator (training stability)"),
        replace(LEARNING_RATE, default=1e-3),
        replace(BATCH_SIZE, default=256),
        EPOCHS,
        Param("reconstruction_weight", "float", 1.0,
              "weight of the reconstruction term in the encoder/generator loss", low=0.0),
        Param("label_smoothing", "float", 0.1, "one-sided label smoothing of the discriminator's real pairs",
              low=0.0, high=1.0, high_open=True),
        Param("grad_clip", "float", 5.0, "largest gradient norm per step (0: no clipping)", low=0.0),
        Param("feature_weight", "float", 0.5,
              "score share of the discriminator feature-matching distance (the rest: reconstruction)",
              low=0.0, high=1.0),
        DEVICE, SEED,
    ),
    "sequence_ae": (
        Param("window", "int", 0,
              "0: each row is a sequence (its numeric columns are the time steps); 2 or more: the file is "
              "time-ordered and windows of this many consecutive rows are the sequences", low=0),
        Param("cell", "str", "gru", "recurrent cell of the encoder and decoder", choices=("gru", "lstm")),
        Param("bidirectional", "bool", True, "read each sequence in both directions"),
        Param("hidden_size", "int", 64, "units of the recurrent layers", low=1),
        Param("num_layers", "int", 1, "stacked recurrent layers", low=1),
        LATENT_DIM,
        DROPOUT,
        replace(LEARNING_RATE, default=3e-3),
        replace(BATCH_SIZE, default=256),
        EPOCHS, VALIDATION_FRACTION, EARLY_STOPPING,
        Param("score", "str", "mse",
              "mse: squared error in the preprocessed units; scaled: each feature's error over its typical error",
              choices=("mse", "scaled")),
        Param("step_layers", "str", "auto",
              "output layer per time step or shared (auto: per step for sequences of up to 32 steps)",
              choices=("auto", "shared", "per_step")),
        DEVICE, SEED,
    ),
    "iforest": (
        Param("n_estimators", "int", 100, "number of trees", low=1),
        Param("max_samples", "float", "auto",
              "rows drawn for each tree: a count, a share of the rows (0 to 1), or auto (256)",
              low=0.0, low_open=True, choices=("auto",)),
        Param("max_features", "float", 1.0, "share of the features each tree sees", low=0.0, high=1.0,
              low_open=True),
        Param("undo_log", "bool", True,
              "split the numeric values on their original scale (the log squeezes the tail where outliers are)"),
        SEED,
    ),
    "ocsvm": (
        Param("nu", "float", 0.5, "expected share of outliers in the training rows", low=0.0, high=1.0,
              low_open=True),
        Param("gamma", "float", "scale", "width of the RBF kernel: a number, scale or auto", low=0.0, low_open=True,
              choices=("scale", "auto")),
        Param("max_train_rows", "int", 5000, "rows the SVM is fitted on at most (a random sample)", low=2),
        SEED,
    ),
    "pca": (
        Param("variance", "float", 0.9, "share of variance the leading components keep (for the expected values)",
              low=0.0, high=1.0, low_open=True),
        Param("floor", "float", 1e-6, "smallest eigenvalue kept, as a share of the largest", low=0.0, low_open=True),
        Param("standardize", "bool", True, "scale every feature to unit variance first"),
        SEED,
    ),
    "ecod": (
        Param("tails", "str", "both",
              "both: a value far out in either tail counts in full; skew: only the tail the column's skew "
              "points to", choices=("both", "skew")),
        SEED,
    ),
    "knn": _NEIGHBORS("encoded"),
    "lof": _NEIGHBORS("minmax"),
}


def params_of(detector: str) -> tuple[Param, ...]:
    """The declared parameters of ``detector``, in constructor order."""
    try:
        return PARAMS[detector]
    except KeyError:
        raise AnomalyDeskError(f"unknown detector '{detector}': choose one of {', '.join(PARAMS)}") from None


def form_params(detector: str) -> tuple[Param, ...]:
    """The parameters the settings form shows."""
    return tuple(p for p in params_of(detector) if p.form)


def defaults(detector: str) -> dict[str, Any]:
    return {p.name: p.default for p in params_of(detector)}


def validate(detector: str, params: dict[str, Any]) -> None:
    """Refuse unknown parameters and values outside what each parameter allows, naming both.
    ``member_params`` of ``auto`` are checked against each member's own declarations."""
    declared = {p.name: p for p in params_of(detector)}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise AnomalyDeskError(f"detector '{detector}' has no parameter(s): {', '.join(unknown)} "
                               f"(it takes {', '.join(declared)})")
    for name, value in params.items():
        declared[name].check(value, detector)
    for member, sub in (params.get("member_params") or {}).items() if detector == "auto" else ():
        if member not in PARAMS or member == "auto":
            raise AnomalyDeskError(f"auto: member_params names '{member}', which is not a member detector")
        if not isinstance(sub, dict):
            raise AnomalyDeskError(f"auto: member_params['{member}'] must be a mapping of parameters")
        validate(member, {k: v for k, v in sub.items() if k not in ("seed", "device")})


def parse_assignments(detector: str, items: list[str] | None) -> dict[str, Any]:
    """``["name=value", ...]`` (the command line's ``--param``) as checked parameters of ``detector``."""
    declared = {p.name: p for p in params_of(detector)}
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise AnomalyDeskError(f"--param {item!r}: write NAME=VALUE, e.g. --param epochs=20")
        if name not in declared:
            raise AnomalyDeskError(f"detector '{detector}' has no parameter '{name}' "
                                   f"(it takes {', '.join(p.name for p in declared.values() if p.form)})")
        out[name] = declared[name].parse(text, detector)
    return out
