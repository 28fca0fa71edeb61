"""Device choice and the generic torch training loop the deep detectors share.

The loop keeps the whole training set as tensors on the device and draws mini-batches by
indexing them with a shuffled permutation (no DataLoader, no per-batch Python work beyond the
step itself); it checks ``should_stop()`` before every batch (raising ``engine.errors.Cancelled``),
reports ``progress(fraction, message, epoch=, batch=, train_loss=, val_loss=, rows_per_s=, eta_s=,
device=)`` every few batches, supports a validation split with early stopping (the best weights are
restored), L1/L2 regularisation, learning-rate schedules, and per-row weights.

``fit_with_fallback`` runs a whole fit and, when CUDA runs out of memory, retries with half the
batch size and then on the CPU, saying so through ``progress``.

Random state is local: callers pass ``torch.Generator`` objects, never global seeds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from engine.detectors.params import ACTIVATIONS as ACTIVATION_NAMES
from engine.detectors.params import OPTIMIZERS, SCHEDULES
from engine.errors import TRAINING_CANCELLED, stop_if_asked

ProgressCallback = Callable[..., None]
StopCallback = Callable[[], bool]


def choose_device(requested: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) -> CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:N"`` as asked.
    Asking for CUDA on a machine without it raises ValueError with a clear message."""
    if isinstance(requested, torch.device):
        requested = str(requested)
    req = (requested or "auto").strip().lower()
    if req == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
        return torch.device(req)
    if req == "cpu":
        return torch.device("cpu")
    if req == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    raise ValueError(f"unknown device '{requested}': use auto, cpu or cuda")


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 1024
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd (and rmsprop)
    weight_decay: float = 0.0  # L2
    l1: float = 0.0  # L1 on weight matrices
    lr_schedule: str = "constant"
    validation_fraction: float = 0.1
    early_stopping: int = 5  # patience in epochs; 0 = off
    min_delta: float = 1e-4  # relative improvement that counts for early stopping
    progress_every: int = 0  # batches between progress reports; 0 = about 10 per epoch
    autocast: torch.dtype | None = None  # e.g. torch.bfloat16: training forward passes under autocast


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bfloat16 matrix instructions (AVX512-BF16 or AMX), where bf16 autocast
    runs the training matmuls about twice as fast as float32."""
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:
        return False


@dataclass
class TrainHistory:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    rows_per_s: float = 0.0
    device: str = "cpu"
    batch_size: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"train_loss": [float(x) for x in self.train_loss], "val_loss": [float(x) for x in self.val_loss],
                "best_epoch": int(self.best_epoch), "epochs_run": int(self.epochs_run),
                "stopped_early": bool(self.stopped_early), "seconds": float(self.seconds),
                "rows_per_s": float(self.rows_per_s), "device": str(self.device),
                "batch_size": int(self.batch_size), "notes": list(self.notes)}


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    name = config.optimizer.lower()
    lr, wd = config.learning_rate, config.weight_decay
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd, nesterov=config.momentum > 0)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name == "adamax":
        return torch.optim.Adamax(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer '{config.optimizer}': choose one of {', '.join(OPTIMIZERS)}")


def make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    """Returns (scheduler or None, steps per batch: bool). ``plateau`` steps on the validation loss."""
    name = config.lr_schedule.lower()
    total = max(1, config.epochs * steps_per_epoch)
    if name in ("constant", "none", ""):
        return None, False
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total), True
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, config.epochs // 3), gamma=0.3), False
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.3, patience=2), False
    raise ValueError(f"unknown learning-rate schedule '{config.lr_schedule}': choose one of {', '.join(SCHEDULES)}")


MAX_VALIDATION_ROWS = 5_000


def split_rows(n: int, weights: torch.Tensor | None, config: TrainConfig, generator: torch.Generator,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Training and validation row indices (on ``device``); rows with weight 0 are in neither."""
    rows = torch.arange(n)
    if weights is not None:
        rows = rows[weights.detach().cpu() > 0]
    if len(rows) == 0:
        raise ValueError("no rows left to train on: every sample weight is 0")
    n_val = int(len(rows) * config.validation_fraction) if config.early_stopping or config.validation_fraction else 0
    if config.validation_fraction <= 0 or len(rows) < 50 or n_val < 10:
        return rows.to(device), None
    # enough to judge early stopping (the standard error of a mean loss over 5,000 rows is a fraction of
    # a percent); bounds the per-epoch validation cost, which on the masked model is one pass per group
    n_val = min(n_val, MAX_VALIDATION_ROWS)
    perm = rows[torch.randperm(len(rows), generator=generator)]
    return perm[n_val:].to(device), perm[:n_val].to(device)


def weighted_mean(per_row: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Mean of a per-row loss, weighted by the rows' sample weights when there are any (a row of
    weight 0, a confirmed anomaly, is not learnt as normal)."""
    if w is None:
        return per_row.mean()
    return (per_row * w).sum() / w.sum().clamp_min(1e-12)


def l1_penalty(model: nn.Module) -> torch.Tensor:
    terms = [p.abs().sum() for name, p in model.named_parameters() if p.dim() > 1 and "weight" in name]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def batch_plan(n_train: int, batch_size: int) -> tuple[int, int]:
    """(batch size, batches per epoch). Small tables get smaller batches, so that an epoch is at least
    ~16 optimiser steps; the last batch takes the remainder (never a tiny batch: batch norm)."""
    bs = max(1, min(int(batch_size), max(32, n_train // 16), n_train))
    return bs, max(1, n_train // bs)


#: manual optimisation: ``step(model, batch, batch_weights) -> {name: detached loss}``; the step makes its
#: own optimiser steps (several optimisers, as a GAN's) and the first loss is the curve's train_loss
ManualStep = Callable[[nn.Module, dict[str, torch.Tensor], torch.Tensor | None], dict[str, torch.Tensor]]


def train(model: nn.Module, batch_loss: Callable[[nn.Module, dict[str, torch.Tensor], torch.Tensor | None],
                                                 torch.Tensor] | None,
          data: dict[str, torch.Tensor], config: TrainConfig, *, weights: torch.Tensor | None = None,
          generator: torch.Generator, device: torch.device, progress: ProgressCallback | None = None,
          should_stop: StopCallback | None = None, manual_step: ManualStep | None = None) -> TrainHistory:
    """Train ``model`` in place. ``data``: name -> tensor with rows first, all on ``device``.
    ``batch_loss(model, batch, batch_weights)`` returns the (weighted) mean loss of a batch; the loop
    makes one optimiser (``config``) step on it. With ``manual_step`` (as Lightning's manual
    optimisation) the loop only draws the batches, checks ``should_stop``, reports progress and ETA
    (every returned loss as a metric) and keeps the history; the step makes its own optimiser steps,
    and ``batch_loss`` (may be None: no validation) only judges the validation rows.
    ``generator`` is a CPU generator (shuffling, validation split)."""
    n = next(iter(data.values())).shape[0]
    history = TrainHistory(device=str(device), batch_size=int(config.batch_size))
    train_rows, val_rows = split_rows(n, weights, config, generator, device)
    if batch_loss is None:
        val_rows = None
    n_train = int(train_rows.shape[0])
    bs, n_batches = batch_plan(n_train, config.batch_size)
    history.batch_size = bs
    optimizer = scheduler = None
    per_step = False
    if manual_step is None:
        optimizer = make_optimizer(model.parameters(), config)
        scheduler, per_step = make_scheduler(optimizer, config, n_batches)
    every = config.progress_every or max(1, n_batches // 10)
    total_batches = max(1, config.epochs * n_batches)
    best_val, best_state, bad_epochs = math.inf, None, 0
    start = time.perf_counter()
    rows_done = 0
    for epoch in range(config.epochs):
        model.train()
        perm = train_rows[torch.randperm(n_train, generator=generator).to(device)]
        names: list[str] = ["train_loss"]
        sums: torch.Tensor | None = None
        for b in range(n_batches):
            stop_if_asked(should_stop, TRAINING_CANCELLED)
            idx = perm[b * bs: (b + 1) * bs if b < n_batches - 1 else n_train]
            batch = {k: v[idx] for k, v in data.items()}
            w = None if weights is None else weights[idx]
            if manual_step is not None:
                losses = manual_step(model, batch, w)
                names = list(losses)
                step_losses = torch.stack([v.detach().float() for v in losses.values()])
            else:
                with torch.autocast(device.type, dtype=config.autocast or torch.float32,
                                    enabled=config.autocast is not None):
                    loss = batch_loss(model, batch, w)
                if config.l1 > 0:
                    loss = loss + config.l1 * l1_penalty(model)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if per_step:
                    scheduler.step()
                step_losses = loss.detach().float().reshape(1)
            sums = step_losses if sums is None else sums + step_losses
            rows_done += int(idx.shape[0])
            done = epoch * n_batches + b + 1
            if progress is not None and (b % every == every - 1 or b == n_batches - 1):
                elapsed = time.perf_counter() - start
                means = (sums / (b + 1)).tolist()
                extra = dict(zip(names[1:], means[1:], strict=True))
                progress(done / total_batches, f"epoch {epoch + 1}/{config.epochs}, batch {b + 1}/{n_batches}",
                         epoch=epoch + 1, batch=b + 1, train_loss=means[0],
                         val_loss=history.val_loss[-1] if history.val_loss else None, **extra,
                         rows_per_s=rows_done / max(elapsed, 1e-9),
                         eta_s=elapsed / done * (total_batches - done), device=str(device))
        history.train_loss.append(float(sums[0].item() / n_batches))
        history.epochs_run = epoch + 1
        if val_rows is not None:
            val = evaluate_loss(model, batch_loss, data, val_rows, weights, bs)
            history.val_loss.append(val)
            if scheduler is not None and not per_step:
                scheduler.step(val) if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) \
                    else scheduler.step()
            if val < best_val - config.min_delta * abs(best_val if math.isfinite(best_val) else val):
                best_val, bad_epochs, history.best_epoch = val, 0, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
                if config.early_stopping and bad_epochs >= config.early_stopping:
                    history.stopped_early = True
                    break
        elif scheduler is not None and not per_step:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(history.train_loss[-1])
            else:
                scheduler.step()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - start
    history.rows_per_s = rows_done / max(history.seconds, 1e-9)
    if progress is not None:
        progress(1.0, f"trained {history.epochs_run} epochs", epoch=history.epochs_run,
                 train_loss=history.train_loss[-1] if history.train_loss else None,
                 val_loss=history.val_loss[-1] if history.val_loss else None,
                 rows_per_s=history.rows_per_s, eta_s=0.0, device=str(device))
    return history


@torch.no_grad()
def evaluate_loss(model: nn.Module, batch_loss, data: dict[str, torch.Tensor], rows: torch.Tensor,
                  weights: torch.Tensor | None, batch_size: int) -> float:
    model.eval()
    total, count = torch.zeros((), device=rows.device), 0
    step = max(batch_size, 8192)
    for s in range(0, int(rows.shape[0]), step):
        idx = rows[s: s + step]
        batch = {k: v[idx] for k, v in data.items()}
        total += batch_loss(model, batch, None if weights is None else weights[idx]) * idx.shape[0]
        count += int(idx.shape[0])
    model.train()
    return float(total.item() / max(count, 1))


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def fit_with_fallback(fit_once: Callable[[torch.device, int], Any], device: torch.device, batch_size: int,
                      progress: ProgressCallback | None = None, min_batch_size: int = 64) -> tuple[Any, torch.device, int]:
    """Run ``fit_once(device, batch_size)``; on CUDA out-of-memory retry with half the batch (down to
    ``min_batch_size``), then on the CPU. Returns (result, device used, batch size used)."""
    while True:
        try:
            return fit_once(device, batch_size), device, batch_size
        except Exception as exc:
            if device.type != "cuda" or not is_out_of_memory(exc):
                raise
            torch.cuda.empty_cache()
            if batch_size // 2 >= min_batch_size:
                batch_size //= 2
                msg = f"GPU out of memory: retrying with batch size {batch_size}"
            else:
                device = torch.device("cpu")
                msg = "GPU out of memory: falling back to the CPU"
            if progress is not None:
                progress(0.0, msg, device=str(device), batch_size=batch_size)


def init_module(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise parameters from ``generator`` (PyTorch's default init, without the global RNG)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1.0 / math.sqrt(max(1, m.weight.shape[1]))
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0, generator=generator)


class LocalDropout(nn.Module):
    """Dropout drawing its mask from a given generator instead of the global RNG."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.p
        return x * keep / (1.0 - self.p)


ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU,
               "selu": nn.SELU, "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "softplus": nn.Softplus}
assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)  # the declared choices (engine.detectors.params)


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation '{name}': choose one of {', '.join(ACTIVATIONS)}") from None
