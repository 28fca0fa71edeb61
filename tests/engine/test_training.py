from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.errors import Cancelled
from engine.training import (
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    choose_device,
    fit_with_fallback,
    init_module,
    train,
)


def _problem(n: int = 256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])
    return {"x": x, "y": y}


def _loss(model, batch, w):
    per_row = ((model(batch["x"]) - batch["y"]) ** 2).squeeze(1)
    return per_row.mean() if w is None else (per_row * w).sum() / w.sum()


def _model(seed: int = 0) -> nn.Module:
    m = nn.Linear(4, 1)
    init_module(m, torch.Generator().manual_seed(seed))
    return m


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device("auto").type == expected
    assert choose_device(None).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            choose_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        choose_device("tpu")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_reduces_the_loss(optimizer):
    data = _problem()
    model = _model()
    lr = 0.05 if optimizer in ("sgd", "adagrad") else 0.02
    hist = train(model, _loss, data, TrainConfig(epochs=15, batch_size=32, optimizer=optimizer, learning_rate=lr,
                                                 validation_fraction=0.0, early_stopping=0),
                 generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_run(schedule):
    hist = train(_model(), _loss, _problem(), TrainConfig(epochs=4, batch_size=64, lr_schedule=schedule),
                 generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    assert hist.epochs_run == 4 and len(hist.val_loss) == 4


def test_progress_reports_metrics():
    calls = []
    train(_model(), _loss, _problem(), TrainConfig(epochs=2, batch_size=32),
          generator=torch.Generator().manual_seed(1), device=torch.device("cpu"),
          progress=lambda f, msg, **m: calls.append((f, msg, m)))
    assert calls, "no progress reported"
    fractions = [c[0] for c in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    metrics = calls[-2][2]
    for key in ("epoch", "batch", "train_loss", "val_loss", "rows_per_s", "eta_s", "device"):
        assert key in metrics
    assert metrics["rows_per_s"] > 0 and metrics["device"] == "cpu"


def test_should_stop_cancels_within_one_batch():
    calls = {"n": 0}
    steps = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 3

    def counting_loss(model, batch, w):
        steps["n"] += 1
        return _loss(model, batch, w)

    with pytest.raises(Cancelled):
        train(_model(), counting_loss, _problem(), TrainConfig(epochs=50, batch_size=16, validation_fraction=0),
              generator=torch.Generator().manual_seed(1), device=torch.device("cpu"), should_stop=should_stop)
    assert steps["n"] == 3  # stopped before the 4th batch


def test_zero_weight_rows_are_not_trained_on():
    data = _problem()
    # rows 0..127 follow another rule; with weight 0 they must not pull the fit
    data["y"][:128] = 100.0
    weights = torch.ones(256)
    weights[:128] = 0.0
    model = _model()
    train(model, _loss, data, TrainConfig(epochs=60, batch_size=32, learning_rate=0.05, validation_fraction=0.0,
                                          early_stopping=0), weights=weights,
          generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    with torch.no_grad():
        err = (model(data["x"][128:]) - data["y"][128:]).abs().mean().item()
    assert err < 0.1


def test_early_stopping_restores_best_epoch():
    hist = train(_model(), _loss, _problem(), TrainConfig(epochs=200, batch_size=256, learning_rate=0.3,
                                                          optimizer="sgd", early_stopping=2),
                 generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    assert hist.stopped_early and hist.epochs_run < 200
    assert hist.best_epoch == int(torch.tensor(hist.val_loss).argmin())


def test_same_seed_same_result():
    def run():
        m = _model(3)
        train(m, _loss, _problem(), TrainConfig(epochs=3, batch_size=32), generator=torch.Generator().manual_seed(5),
              device=torch.device("cpu"))
        return m.weight.detach().clone()

    assert torch.equal(run(), run())


def test_out_of_memory_retries_with_half_batch_then_cpu():
    messages, tried = [], []

    def fit_once(device, batch_size):
        tried.append((device.type, batch_size))
        if device.type == "cuda":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    result, device, bs = fit_with_fallback(fit_once, torch.device("cuda"), 256, progress=lambda f, m, **k: messages.append(m),
                                           min_batch_size=64)
    assert result == "done" and device.type == "cpu" and bs == 64
    assert tried == [("cuda", 256), ("cuda", 128), ("cuda", 64), ("cpu", 64)]
    assert any("falling back to the CPU" in m for m in messages)
    assert any("batch size 128" in m for m in messages)


def test_other_errors_are_not_swallowed():
    def fit_once(device, batch_size):
        raise ValueError("bad")

    with pytest.raises(ValueError):
        fit_with_fallback(fit_once, torch.device("cuda"), 256)


def test_bf16_autocast_trains_float32_weights():
    """``TrainConfig.autocast``: forward passes under bf16 autocast, the weights stay float32 and learn."""
    model = _model()
    hist = train(model, _loss, _problem(), TrainConfig(epochs=15, batch_size=32, learning_rate=0.02,
                                                       validation_fraction=0.0, early_stopping=0,
                                                       autocast=torch.bfloat16),
                 generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_validation_rows_are_capped():
    """A large table holds out at most MAX_VALIDATION_ROWS for early stopping (one masked pass per group
    per epoch is the validation cost); the rest trains."""
    from engine.training import MAX_VALIDATION_ROWS, TrainConfig, split_rows

    config = TrainConfig(validation_fraction=0.1, early_stopping=5)
    train_rows, val_rows = split_rows(200_000, None, config, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert val_rows.shape[0] == MAX_VALIDATION_ROWS and train_rows.shape[0] == 200_000 - MAX_VALIDATION_ROWS
    _, small = split_rows(1_000, None, config, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert small.shape[0] == 100


def test_manual_step_mode_leaves_the_optimiser_steps_to_the_step_and_reports_its_losses():
    data, model = _problem(), _model()
    optimisers = [torch.optim.SGD([model.weight], lr=0.05), torch.optim.SGD([model.bias], lr=0.05)]
    seen, calls = [], {"steps": 0}

    def step(net, batch, w):  # two optimisers, one after the other (as a GAN's discriminator and generator)
        calls["steps"] += 1
        losses = []
        for opt in optimisers:
            loss = _loss(net, batch, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return {"train_loss": losses[0], "second_loss": losses[1]}

    config = TrainConfig(epochs=5, batch_size=32, validation_fraction=0.0, early_stopping=0, learning_rate=99.0)
    hist = train(model, None, data, config, generator=torch.Generator().manual_seed(1), device=torch.device("cpu"),
                 progress=lambda f, msg, **m: seen.append(m), manual_step=step)
    assert calls["steps"] == 5 * 8 and hist.epochs_run == 5 and len(hist.train_loss) == 5
    assert hist.train_loss[-1] < hist.train_loss[0]  # the step's SGD at 0.05, not the config's rate of 99
    assert any("second_loss" in m for m in seen) and "eta_s" in seen[0]
    stops = iter([False, False, True])
    with pytest.raises(Cancelled):
        train(_model(), None, data, config, generator=torch.Generator().manual_seed(1), device=torch.device("cpu"),
              should_stop=lambda: next(stops), manual_step=step)
    assert calls["steps"] == 5 * 8 + 2
