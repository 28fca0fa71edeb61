"""Building blocks shared by the torch detectors: an MLP stack, the tabular input layer (numerics plus
summed embeddings of categorical codes), the tabular output heads and the per-column loss terms.

The autoencoder, VAE, BiGAN and sequence autoencoder import these; they live apart from any one detector
so that a change to the autoencoder's training does not ripple into the others by accident.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.training import LocalDropout, activation


def mlp(sizes: list[int], act: str, dropout: float, batch_norm: bool, last_plain: bool) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``; activation (+ batch norm, dropout) after each but
    the last when ``last_plain``."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if last_plain and i == len(sizes) - 2:
            break
        if batch_norm:
            layers.append(nn.BatchNorm1d(sizes[i + 1]))
        layers.append(activation(act))
        if dropout > 0:
            layers.append(LocalDropout(dropout))
    return nn.Sequential(*layers)


class TabularInput(nn.Module):
    """First layer over [numeric | categorical codes]: Linear on numerics + summed embeddings of codes."""

    def __init__(self, n_numeric: int, cardinalities: list[int], width: int, mask_inputs: bool = False):
        super().__init__()
        self.n_numeric = n_numeric
        self.mask_inputs = mask_inputs  # numeric inputs come with "masked" flags (0 would read as the median)
        self.numeric = nn.Linear(n_numeric * (2 if mask_inputs else 1), width) if n_numeric else None
        total = int(sum(cardinalities))
        self.embed = nn.Embedding(total, width) if total else None
        offsets = np.concatenate([[0], np.cumsum(cardinalities)[:-1]]).astype(np.int64) if cardinalities else []
        self.register_buffer("offsets", torch.as_tensor(np.asarray(offsets, dtype=np.int64)), persistent=False)
        # The last level of every column is "<other>" (rare or unseen values): too few rows to learn what
        # it means, so it enters as "unknown" (no embedding) and the decoder must explain it from context.
        self.register_buffer("other", torch.as_tensor(np.asarray(cardinalities, dtype=np.int64) - 1),
                             persistent=False)
        self.bias = nn.Parameter(torch.zeros(width)) if self.numeric is None else None

    def forward(self, x_num: torch.Tensor, codes: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``keep`` (B, n_numeric + n_cat) 0/1 masks inputs out (denoising / masked training and scoring)."""
        h = self.bias
        if self.numeric is not None:
            if self.mask_inputs:
                k = keep[:, : self.n_numeric] if keep is not None else torch.ones_like(x_num)
                h = self.numeric(torch.cat([x_num * k, 1.0 - k], dim=1))
            else:
                h = self.numeric(x_num * keep[:, : self.n_numeric] if keep is not None else x_num)
        if self.embed is not None:
            # one fused gather-and-sum (embedding_bag) instead of a (B, n_cat, width) tensor times a mask
            known = self.known(codes, keep)
            h = h + torch.nn.functional.embedding_bag(codes + self.offsets, self.embed.weight, mode="sum",
                                                      per_sample_weights=known)
        return h

    def known(self, codes: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_cat) weight of each code's embedding: 0 for "<other>" and for masked columns."""
        known = (codes != self.other).to(self.embed.weight.dtype)
        return known * keep[:, self.n_numeric:] if keep is not None else known

    def column_embedding(self, codes: torch.Tensor, j: int) -> torch.Tensor:
        """(B, width): what categorical column ``j`` adds to the first layer (0 for "<other>")."""
        e = torch.nn.functional.embedding(codes[:, j] + self.offsets[j], self.embed.weight)
        return e * (codes[:, j] != self.other[j]).to(e.dtype)[:, None]

    def numeric_part(self, x_num: torch.Tensor, hidden: bool) -> torch.Tensor | None:
        """What the numeric block adds to the first layer, visible or (``hidden``) masked out."""
        if self.numeric is None:
            return None
        if not self.mask_inputs:
            return self.numeric(torch.zeros_like(x_num) if hidden else x_num)
        k = torch.zeros_like(x_num) if hidden else torch.ones_like(x_num)
        return self.numeric(torch.cat([x_num * k, 1.0 - k], dim=1))


class TabularOutput(nn.Module):
    """Heads: numeric reconstruction and per-column categorical log-probabilities."""

    def __init__(self, width: int, n_numeric: int, cardinalities: list[int], variance: bool = False):
        super().__init__()
        self.n_numeric = n_numeric
        self.variance = variance  # also predict a log-variance per numeric feature (heteroscedastic)
        self.cardinalities = list(cardinalities)
        total = int(sum(cardinalities))
        n_num_out = n_numeric * (2 if variance else 1)
        self.head = nn.Linear(width, n_num_out + total)
        if cardinalities:
            k = max(cardinalities)
            offsets = np.concatenate([[0], np.cumsum(cardinalities)[:-1]])
            index = np.zeros((len(cardinalities), k), dtype=np.int64)
            pad = np.ones((len(cardinalities), k), dtype=bool)
            for j, (o, c) in enumerate(zip(offsets, cardinalities, strict=True)):
                index[j, :c] = n_num_out + o + np.arange(c)
                pad[j, :c] = False
        else:
            index, pad = np.zeros((0, 1), dtype=np.int64), np.zeros((0, 1), dtype=bool)
        self.register_buffer("index", torch.as_tensor(index), persistent=False)
        self.register_buffer("pad", torch.as_tensor(pad), persistent=False)
        # for the fused training loss: each logit's column, a (total, n_cat) 0/1 column matrix and each
        # column's first logit (relative to the first categorical output)
        seg = np.repeat(np.arange(len(cardinalities), dtype=np.int64), np.asarray(cardinalities, dtype=np.int64))
        self.register_buffer("segment", torch.as_tensor(seg), persistent=False)
        matrix = np.zeros((len(seg), len(cardinalities)), dtype=np.float32)
        matrix[np.arange(len(seg)), seg] = 1.0
        self.register_buffer("segment_matrix", torch.as_tensor(matrix), persistent=False)
        starts = np.concatenate([[0], np.cumsum(cardinalities)[:-1]]).astype(np.int64) if cardinalities else []
        self.register_buffer("starts", torch.as_tensor(np.asarray(starts, dtype=np.int64)), persistent=False)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        out = self.head(h)
        x_num = out[:, : self.n_numeric]
        logvar = (out[:, self.n_numeric: 2 * self.n_numeric].clamp(LOGVAR_MIN, LOGVAR_MAX)
                  if self.variance else None)
        if not self.cardinalities:
            return x_num, logvar, out.new_zeros((out.shape[0], 0, 1))
        # (B, n_cat, max_card): each column's contiguous slice of logits, padded with -inf. Slices and pads
        # (not an index gather) keep the backward pass cheap on the CPU.
        k = max(self.cardinalities)
        blocks, start = [], self.n_numeric * (2 if self.variance else 1)
        for c in self.cardinalities:
            block = out[:, start: start + c]
            blocks.append(torch.nn.functional.pad(block, (0, k - c), value=float("-inf")) if c < k else block)
            start += c
        return x_num, logvar, torch.log_softmax(torch.stack(blocks, dim=1), dim=-1)


    def terms(self, h: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(x_hat, logvar, nll) for training: the categorical negative log-likelihoods (B, n_cat) straight
        from the flat logits (a log-sum-exp per column through one small matmul), without the padded
        (B, n_cat, max_card) log-softmax that scoring builds: half the work and no padding to fill."""
        out = self.head(h).float()  # loss terms in float32 whatever the autocast of the matmuls
        d = self.n_numeric
        x_num = out[:, :d]
        logvar = out[:, d: 2 * d].clamp(LOGVAR_MIN, LOGVAR_MAX) if self.variance else None
        if not self.cardinalities:
            return x_num, logvar, out.new_zeros((out.shape[0], 0))
        logits = out[:, d * (2 if self.variance else 1):]
        n = logits.shape[0]
        with torch.no_grad():  # per-row, per-column maximum: keeps exp() in range
            top = logits.new_full((n, len(self.cardinalities)), float("-inf")).scatter_reduce(
                1, self.segment.expand(n, -1), logits, "amax")
        expsum = torch.exp(logits - top.index_select(1, self.segment)) @ self.segment_matrix.to(logits.dtype)
        nll = expsum.log() + top - logits.gather(1, codes + self.starts)
        return x_num, logvar, nll


LOGVAR_MIN, LOGVAR_MAX = -6.0, 4.0  # predicted variances stay within e^-6..e^4 (scaled units)


def numeric_terms(x_num_hat: torch.Tensor, logvar: torch.Tensor | None, x_num: torch.Tensor,
                  numeric_scale: torch.Tensor | None = None) -> torch.Tensor:
    """(B, n_numeric) numeric terms (see ``column_terms``)."""
    se = (x_num_hat - x_num) ** 2
    if logvar is not None:
        return 0.5 * (se * torch.exp(-logvar) + logvar - LOGVAR_MIN)
    if numeric_scale is not None:
        return 0.5 * se / numeric_scale ** 2
    return se


def column_terms(x_num_hat: torch.Tensor, logvar: torch.Tensor | None, log_probs: torch.Tensor,
                 x_num: torch.Tensor, codes: torch.Tensor,
                 numeric_scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row terms: (B, n_numeric) numeric terms and (B, n_cat) categorical negative log-likelihoods.
    Numeric: with a predicted ``logvar`` the Gaussian NLL ``0.5 (se / var + logvar - LOGVAR_MIN)`` (>= 0);
    else ``0.5 se / numeric_scale^2`` when a scale is given, else the raw squared error."""
    se = numeric_terms(x_num_hat, logvar, x_num, numeric_scale)
    nll = -log_probs.gather(2, codes[:, :, None]).squeeze(2) if codes.shape[1] else codes.new_zeros(
        (codes.shape[0], 0), dtype=se.dtype)
    return se, nll
