"""Variational autoencoder for mixed tables (torch).

Same inputs and output heads as the autoencoder (numeric block + one softmax per categorical
column); the encoder gives a Gaussian posterior over the latent code, trained with the
reconstruction negative log-likelihood plus ``beta`` x KL divergence to N(0, I).

``score="probability"`` (default): the reconstruction probability of An & Cho (2015), the expected
negative log-likelihood of the row over ``n_samples`` latent draws (numeric features with the
per-feature typical error as the Gaussian's scale); ``"error"``: the same terms from the posterior
mean only; ``"mse"``: plain squared error.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from engine.detectors.deep.autoencoder import AutoencoderDetector
from engine.detectors.deep.layers import TabularInput, TabularOutput, column_terms, mlp
from engine.training import LocalDropout, activation, weighted_mean


class _VAENet(nn.Module):
    def __init__(self, n_numeric: int, cardinalities: list[int], hidden: list[int], latent: int, act: str,
                 dropout: float, batch_norm: bool):
        super().__init__()
        hidden = [int(h) for h in hidden] or [max(8, 2 * latent)]
        self.input = TabularInput(n_numeric, cardinalities, hidden[0])
        self.input_act = nn.Sequential(*([nn.BatchNorm1d(hidden[0])] if batch_norm else []), activation(act),
                                       *([LocalDropout(dropout)] if dropout > 0 else []))
        self.encoder = mlp(hidden, act, dropout, batch_norm, last_plain=False)
        self.mu = nn.Linear(hidden[-1], latent)
        self.logvar = nn.Linear(hidden[-1], latent)
        self.decoder = mlp([latent] + hidden[::-1], act, dropout, batch_norm, last_plain=False)
        self.output = TabularOutput(hidden[0], n_numeric, cardinalities)

    def encode(self, x_num, codes, keep=None):
        h = self.encoder(self.input_act(self.input(x_num, codes, keep)))
        return self.mu(h), self.logvar(h).clamp(-12.0, 8.0)

    def decode(self, z):
        return self.output(self.decoder(z))

    def forward(self, x_num, codes, keep=None):
        mu, _ = self.encode(x_num, codes, keep)
        return self.decode(mu)


class VAEDetector(AutoencoderDetector):
    name: ClassVar[str] = "vae"

    def __init__(self, hidden_layers: list[int] | tuple[int, ...] | None = None, latent_dim: int | None = None,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 optimizer: str = "adam", learning_rate: float = 3e-3, lr_schedule: str = "cosine",
                 momentum: float = 0.9, batch_size: int = 512, epochs: int | None = None, l1: float = 0.0,
                 l2: float = 0.0, validation_fraction: float = 0.1, early_stopping: int = 5,
                 score: str = "probability", n_samples: int = 10, beta: float = 1.0, input_noise: float = 0.0,
                 aggregate: str = "l2",
                 device: str = "auto", seed: int = 0):
        super().__init__(hidden_layers=hidden_layers, latent_dim=latent_dim, activation=activation,
                         dropout=dropout, batch_norm=batch_norm, optimizer=optimizer,
                         learning_rate=learning_rate, lr_schedule=lr_schedule, momentum=momentum,
                         batch_size=batch_size, epochs=epochs, l1=l1, l2=l2,
                         validation_fraction=validation_fraction, early_stopping=early_stopping, score=score,
                         input_noise=input_noise, aggregate=aggregate, device=device, seed=seed)
        self.n_samples, self.beta = n_samples, beta  # the VAE: plain MSE, no masks
        self.precision = "fp32"  # the sampled latent and the KL term stay float32
        self.trim = 0.0

    def _build(self, n_numeric: int, cardinalities: list[int]) -> nn.Module:
        return _VAENet(n_numeric, cardinalities, self.hidden_, self.latent_, self.activation,
                       float(self.dropout), bool(self.batch_norm))

    def _batch_loss(self, net, batch, w):
        keep = None
        if net.training and self.input_noise > 0:
            n_in = batch["x"].shape[1] + batch["c"].shape[1]
            keep = (torch.rand((batch["x"].shape[0], n_in), generator=self._gen, device=batch["x"].device)
                    >= self.input_noise).to(batch["x"].dtype)
        mu, logvar = net.encode(batch["x"], batch["c"], keep)
        z = mu + torch.randn(mu.shape, generator=self._gen, device=mu.device, dtype=mu.dtype) * (0.5 * logvar).exp()
        x_hat, _, nll = net.output.terms(net.decoder(z), batch["c"])
        se = (x_hat - batch["x"]) ** 2
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(dim=1)
        per_row = 0.5 * se.sum(dim=1) + nll.sum(dim=1) + float(self.beta) * kl
        return weighted_mean(per_row, w)

    def _terms(self, fm, scaled: bool = True):
        if self.score_ != "probability":
            return super()._terms(fm, scaled)
        scale = torch.as_tensor(self.numeric_scale_, device=self.device_) if scaled and hasattr(
            self, "numeric_scale_") else None
        gen = torch.Generator(device=self.device_).manual_seed(int(self.seed) + 7919)  # same draws every call
        n_samples = max(1, int(self.n_samples))

        def expected_terms(x, c, _x_hat, _logvar, _log_probs):
            mu, logvar = self.net_.encode(x, c)
            std = (0.5 * logvar).exp()
            acc_num = acc_cat = None
            for _ in range(n_samples):
                z = mu + torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype) * std
                x_hat, _, log_probs = self.net_.decode(z)
                se, nll = column_terms(x_hat, None, log_probs, x, c, scale)
                acc_num = se if acc_num is None else acc_num + se
                acc_cat = nll if acc_cat is None else acc_cat + nll
            return acc_num / n_samples, acc_cat / n_samples

        num, cat = self._run(fm, expected_terms)
        if scale is not None and cat.shape[1]:
            cat = cat + fm.rare_nll
        return num, cat

    def _resolve_modes(self, n_numeric, cardinalities) -> None:
        self.masking_, self.variance_ = False, False  # the VAE reconstructs the whole row from its latent
        self._resolve_scoring(cardinalities)
        self.hidden_ = list(self.hidden_layers) if self.hidden_layers is not None else [64, 32]
        self.latent_ = int(self.latent_dim) if self.latent_dim is not None else 8
        self.epochs_ = int(self.epochs) if self.epochs is not None else 30

    def _resolve_score(self, cardinalities, masking) -> str:
        return str(self.score)  # "probability", or the autoencoder's "nll" / "mse" on one decoding

    def _calibrate(self, fm, weights) -> None:
        for attr in ("numeric_scale_", "column_baseline_"):
            if hasattr(self, attr):
                delattr(self, attr)
        super()._calibrate(fm, weights)
