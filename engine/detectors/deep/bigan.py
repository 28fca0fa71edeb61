"""BiGAN detector: adversarially learned encoder and generator (torch).

An encoder E (x -> z), a generator G (z -> x) and a discriminator D on (x, z) pairs are trained
jointly (Donahue et al. 2017, "Adversarial feature learning"): D tells real pairs (x, E(x)) from
generated pairs (G(z), z), z ~ N(0, I); E and G learn to fool it, which makes E invert G on the
rows learnt as normal. Scoring follows Zenati et al. ("Efficient GAN-based anomaly detection",
2018; "Adversarially learned anomaly detection", 2018):

    score = (1 - feature_weight) * reconstruction / typical + feature_weight * matching / typical

``reconstruction`` is the row's negative log-likelihood given G(E(x)) (numeric features as
``0.5 (error / typical error)^2``, categorical columns ``-log p(observed level)``, like the
autoencoder) and ``matching`` the L1 distance between D's hidden features of (x, E(x)) and of
(G(E(x)), E(x)); both are divided by their median on the training rows, so ``feature_weight``
means the same on every table.

Stability (GANs on small tables collapse or oscillate without these): spectral normalisation and
dropout in D, one-sided label smoothing, Adam with beta1 = 0.5, a reconstruction term in the E/G
loss (``reconstruction_weight``), gradient-norm clipping and a cosine learning-rate decay.

Inputs are the dense encoding ``[numeric | one-hot]``; G ends with one softmax per categorical
column, so D sees one-hot rows beside probability rows of the same layout. Per-column
contributions come from the reconstruction term (the matching distance has no per-column split).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.detectors.base import Detector, ProgressCallback, StopCallback
from engine.detectors.deep.dense import (
    attach_net,
    block_outputs,
    check_layout,
    check_weights,
    dense_inputs,
    feature_terms,
    shares,
    state_of,
    to_columns,
    unfitted_from,
)
from engine.detectors.deep.layers import mlp
from engine.training import (
    LocalDropout,
    TrainConfig,
    TrainHistory,
    batch_plan,
    choose_device,
    fit_with_fallback,
    init_module,
    train,
    weighted_mean,
)

_SCORE_BATCH = 16384
# Optimiser steps when ``epochs`` is left empty (bounded to 5..400 epochs). Measured: on KDD a long
# fit learns to reconstruct the attacks too (AUCROC 0.95 after ~300 steps, 0.86 after 600, 0.77 after
# 2,000, as the autoencoder does), while 200-row ECG5000 needs a few hundred steps (0.92 after 60, 0.98
# after 360). A fixed step budget gives small tables many epochs and large ones few.
_STEP_BUDGET = 300


class SNLinear(nn.Linear):
    """Linear layer with spectral normalisation (Miyato et al. 2018): the weight is divided by its
    largest singular value, estimated by one power iteration per training step. The iteration's
    vector is a buffer (saved with the weights), so scoring is deterministic."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        self.register_buffer("u", F.normalize(torch.ones(out_features), dim=0))

    def reset_u(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            u = torch.randn(self.u.shape, generator=generator, dtype=self.u.dtype)
            self.u.copy_(F.normalize(u, dim=0).to(self.u.device))
            for _ in range(10):
                self._power_step()

    def _power_step(self) -> None:
        v = F.normalize(self.weight.t() @ self.u, dim=0, eps=1e-12)
        self.u.copy_(F.normalize(self.weight @ v, dim=0, eps=1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self._power_step()
        u = self.u.detach().clone()  # the next power step updates the buffer in place
        v = F.normalize(self.weight.t() @ u, dim=0, eps=1e-12).detach()
        sigma = torch.dot(u, self.weight @ v).clamp_min(1e-12)
        return F.linear(x, self.weight / sigma, self.bias)


class _Discriminator(nn.Module):
    """D(x, z): an x branch and a z branch, joined; ``features`` is the joint hidden layer."""

    def __init__(self, n_in: int, latent: int, width: int, dropout: float, spectral: bool):
        super().__init__()
        lin = SNLinear if spectral else nn.Linear

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(lin(i, o), nn.LeakyReLU(0.2), *([LocalDropout(dropout)] if dropout > 0 else []))

        self.x_branch = block(n_in, width)
        self.z_branch = block(latent, max(8, width // 2))
        self.joint = block(width + max(8, width // 2), width)
        self.out = lin(width, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], dim=1))
        return self.out(f).squeeze(1), f


class _BiGANNet(nn.Module):
    def __init__(self, n_numeric: int, cards: list[int], hidden: list[int], latent: int, d_width: int,
                 dropout: float, spectral: bool):
        super().__init__()
        self.n_numeric, self.cards = int(n_numeric), [int(c) for c in cards]
        n_in = self.n_numeric + sum(self.cards)
        self.encoder = mlp([n_in] + hidden + [latent], "leaky_relu", 0.0, False, last_plain=True)
        self.generator = mlp([latent] + hidden[::-1] + [n_in], "leaky_relu", 0.0, False, last_plain=True)
        self.disc = _Discriminator(n_in, latent, d_width, dropout, spectral)

    def generate(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(dense reconstruction, categorical log-probabilities)."""
        return block_outputs(self.generator(z), self.n_numeric, self.cards)


def _bce(logits: torch.Tensor, target: float, w: torch.Tensor | None) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none")
    return weighted_mean(loss, w)


class BiGANDetector(Detector):
    name: ClassVar[str] = "bigan"
    _fitted_attr: ClassVar[str] = "net_"

    def __init__(self, hidden_layers: list[int] | tuple[int, ...] | None = None, latent_dim: int | None = None,
                 discriminator_width: int = 64, dropout: float = 0.2, spectral_norm: bool = True,
                 learning_rate: float = 1e-3, batch_size: int = 256, epochs: int | None = None,
                 reconstruction_weight: float = 1.0, label_smoothing: float = 0.1, grad_clip: float = 5.0,
                 feature_weight: float = 0.5, device: str = "auto", seed: int = 0):
        if hidden_layers is not None:
            hidden_layers = [int(h) for h in hidden_layers]
        self._store_params(locals())

    # -- building ------------------------------------------------------------------------------------
    def _resolve(self, n_in: int) -> None:
        self.hidden_ = list(self.hidden_layers) if self.hidden_layers is not None else [64, 32]
        self.latent_ = int(self.latent_dim) if self.latent_dim is not None else 8
        if self.latent_ < 1 or any(h < 1 for h in self.hidden_) or int(self.discriminator_width) < 1:
            raise ValueError("bigan: layer sizes, latent_dim and discriminator_width must be at least 1")
        if not 0.0 <= float(self.feature_weight) <= 1.0:
            raise ValueError("bigan: feature_weight must be between 0 and 1")

    def _build(self) -> _BiGANNet:
        return _BiGANNet(self.n_numeric_, self.cardinalities_, self.hidden_, self.latent_,
                         int(self.discriminator_width), float(self.dropout), bool(self.spectral_norm))

    # -- fitting -------------------------------------------------------------------------------------
    def fit(self, fm, *, sample_weight: np.ndarray | None = None, progress: ProgressCallback | None = None,
            should_stop: StopCallback | None = None) -> BiGANDetector:
        n_numeric, cards = int(fm.numeric.shape[1]), [int(c) for c in fm.cardinalities]
        if n_numeric + len(cards) == 0:
            raise ValueError("no feature columns to learn from")
        if fm.n_rows < 2:
            raise ValueError(f"need at least 2 rows to train the bigan, found {fm.n_rows}")
        weights = check_weights(sample_weight, fm.n_rows)
        self.n_numeric_, self.cardinalities_ = n_numeric, cards
        self._resolve(n_numeric + sum(cards))
        values = dense_inputs(fm)

        def fit_once(device: torch.device, batch_size: int):
            return self._train(values, weights, device, batch_size, progress, should_stop)

        device = choose_device(self.device)
        (net, history), device, _ = fit_with_fallback(fit_once, device, int(self.batch_size), progress)
        self.net_, self.device_, self.history_ = net, device, history
        self.n_features_in_ = n_numeric + sum(cards)
        self._calibrate(fm, weights)
        return self

    def _train(self, values: np.ndarray, weights: np.ndarray | None, device: torch.device, batch_size: int,
               progress, should_stop) -> tuple[_BiGANNet, TrainHistory]:
        init_gen = torch.Generator().manual_seed(int(self.seed))
        net = self._build()
        init_module(net, init_gen)
        for m in net.modules():
            if isinstance(m, SNLinear):
                m.reset_u(init_gen)
        net.to(device)
        gen = torch.Generator(device=device).manual_seed(int(self.seed) + 1)
        for m in net.modules():
            if isinstance(m, LocalDropout):
                m.generator = gen
        x_all = torch.as_tensor(values, device=device)
        w_all = None if weights is None else torch.as_tensor(weights, device=device)
        n_train = values.shape[0] if weights is None else int((weights > 0).sum())
        bs, n_batches = batch_plan(n_train, batch_size)
        epochs = int(self.epochs) if self.epochs is not None else int(
            min(400, max(5, math.ceil(_STEP_BUDGET / n_batches))))
        if epochs < 1:
            raise ValueError("bigan: epochs must be at least 1")
        betas = (0.5, 0.999)
        lr = float(self.learning_rate)
        d_params = list(net.disc.parameters())
        eg_params = list(net.encoder.parameters()) + list(net.generator.parameters())
        opt_d = torch.optim.Adam(d_params, lr=lr, betas=betas)
        opt_eg = torch.optim.Adam(eg_params, lr=lr, betas=betas)
        total = epochs * n_batches
        sched = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=0.1 * lr) for o in (opt_d, opt_eg)]
        real_target = 1.0 - float(self.label_smoothing)
        clip = float(self.grad_clip)
        rec_weight = float(self.reconstruction_weight)

        def step(net: _BiGANNet, batch: dict[str, torch.Tensor], w: torch.Tensor | None) -> dict[str, torch.Tensor]:
            """One discriminator step, then one encoder/generator step (two optimisers: manual mode)."""
            x = batch["x"]
            z_fake = torch.randn((x.shape[0], self.latent_), generator=gen, device=device)
            # discriminator step: real pairs (x, E(x)) -> 1 (smoothed), generated (G(z), z) -> 0
            z_real = net.encoder(x)
            x_fake, _ = net.generate(z_fake)
            d_real, _ = net.disc(x, z_real.detach())
            d_fake, _ = net.disc(x_fake.detach(), z_fake)
            loss_d = _bce(d_real, real_target, w) + _bce(d_fake, 0.0, None)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(d_params, clip)
            opt_d.step()
            # encoder/generator step: swapped labels, plus the reconstruction G(E(x)) ~ x
            d_real, _ = net.disc(x, z_real)
            d_fake, _ = net.disc(x_fake, z_fake)
            adv = _bce(d_real, 0.0, w) + _bce(d_fake, 1.0, None)
            x_rec, log_probs = net.generate(z_real)
            per_row = 0.5 * feature_terms(x_rec, log_probs, x, self.n_numeric_).sum(dim=1)
            rec = weighted_mean(per_row, w)
            loss_eg = adv + rec_weight * rec
            opt_eg.zero_grad(set_to_none=True)
            loss_eg.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(eg_params, clip)
            opt_eg.step()
            for s in sched:
                s.step()
            return {"train_loss": rec.detach(), "d_loss": loss_d.detach(), "g_loss": adv.detach()}

        config = TrainConfig(epochs=epochs, batch_size=bs, validation_fraction=0.0, early_stopping=0)
        history = train(net, None, {"x": x_all}, config, weights=w_all, generator=init_gen, device=device,
                        progress=progress, should_stop=should_stop, manual_step=step)
        history.notes.append(f"{epochs} epochs of {n_batches} batches; train_loss is the reconstruction term")
        history.best_epoch = history.epochs_run - 1  # no validation: the weights are the last epoch's
        return net, history

    def _calibrate(self, fm, weights: np.ndarray | None) -> None:
        """Typical error per numeric feature, then the medians that put both score parts on one scale."""
        keep = slice(None) if weights is None else weights > 0
        self.numeric_scale_ = np.ones(self.n_numeric_, dtype=np.float32)
        terms, _, _ = self._pass(fm, scaled=False)
        if self.n_numeric_:
            rms = np.sqrt(np.mean(terms[keep][:, : self.n_numeric_], axis=0))
            self.numeric_scale_ = np.maximum(rms, 1e-2).astype(np.float32)
        terms, match, _ = self._pass(fm)
        cols = to_columns(terms, fm.source_index, len(fm.source_columns))
        self.column_baseline_ = np.median(cols[keep], axis=0).astype(np.float64)
        self.reference_ = np.asarray([max(float(np.median(cols.sum(axis=1)[keep])), 1e-6),
                                      max(float(np.median(match[keep])), 1e-6)], dtype=np.float64)

    # -- scoring -------------------------------------------------------------------------------------
    @torch.no_grad()
    def _pass(self, fm, scaled: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(per-feature reconstruction terms (n, n_features), feature-matching distance (n,),
        dense reconstruction (n, n_features))."""
        self._check_fitted()
        check_layout(fm, self.n_numeric_, self.cardinalities_, self.name)
        values = dense_inputs(fm)
        net = self.net_.eval()
        scale = torch.as_tensor(self.numeric_scale_, device=self.device_) if scaled else None
        terms, match, recs = [], [], []
        for s in range(0, values.shape[0], _SCORE_BATCH):
            x = torch.as_tensor(values[s: s + _SCORE_BATCH], device=self.device_)
            z = net.encoder(x)
            x_rec, log_probs = net.generate(z)
            t = feature_terms(x_rec, log_probs, x, self.n_numeric_)
            if scale is not None and self.n_numeric_:
                t = torch.cat([0.5 * t[:, : self.n_numeric_] / scale ** 2, t[:, self.n_numeric_:]], dim=1)
            _, f_real = net.disc(x, z)
            _, f_rec = net.disc(x_rec, z)
            terms.append(t.cpu().numpy())
            match.append((f_real - f_rec).abs().sum(dim=1).cpu().numpy())
            recs.append(x_rec.cpu().numpy())
        if not terms:
            n = values.shape[1]
            return np.zeros((0, n), np.float32), np.zeros(0, np.float32), np.zeros((0, n), np.float32)
        return np.concatenate(terms), np.concatenate(match), np.concatenate(recs)

    def _parts(self, fm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        terms, match, _ = self._pass(fm)
        cols = to_columns(terms, fm.source_index, len(fm.source_columns))
        return cols, cols.sum(axis=1), match.astype(np.float64)

    def decision_function(self, fm) -> np.ndarray:
        _, rec, match = self._parts(fm)
        a = float(self.feature_weight)
        return (1.0 - a) * rec / self.reference_[0] + a * match / self.reference_[1]

    def feature_contributions(self, fm) -> np.ndarray:
        cols, _, _ = self._parts(fm)
        return shares(np.maximum(cols - self.column_baseline_, 0.0), cols)

    def expected_values(self, fm) -> np.ndarray:
        return self._pass(fm)[2].astype(np.float32)

    # -- persistence ---------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        return state_of(self, {"hidden": list(self.hidden_), "latent": self.latent_},
                        {"numeric_scale": np.asarray(self.numeric_scale_, dtype=np.float32),
                         "column_baseline": np.asarray(self.column_baseline_, dtype=np.float64),
                         "reference": np.asarray(self.reference_, dtype=np.float64)})

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> BiGANDetector:
        det = unfitted_from(cls, meta)
        det.hidden_, det.latent_ = [int(h) for h in meta["hidden"]], int(meta["latent"])
        attach_net(det, det._build, arrays, meta)
        det.numeric_scale_ = np.asarray(arrays["numeric_scale"], dtype=np.float32)
        det.column_baseline_ = np.asarray(arrays["column_baseline"], dtype=np.float64)
        det.reference_ = np.asarray(arrays["reference"], dtype=np.float64)
        if det.numeric_scale_.shape != (det.n_numeric_,) or det.reference_.shape != (2,):
            raise ValueError("bigan state: calibration arrays of the wrong shape")
        return det
