"""Normalisation layers of Conv-TasNet.

``gLN`` (global layer norm) looks at the whole signal; ``cLN`` (channel-wise) at one frame, so it
is causal; ``BN`` (BatchNorm1d) is a per-channel affine map at inference, so it is causal too and
folds into the convolution it follows (see ``edgesep.models.convtasnet_fold``), which is what an
int8 runtime wants; ``none`` is the identity (what a folded BN model has left).

References: Luo & Mesgarani, "Conv-TasNet: Surpassing Ideal Time-Frequency Magnitude Masking for
Speech Separation", IEEE/ACM TASLP 2019 (global layer norm, gLN); Ioffe & Szegedy, "Batch
Normalization", ICML 2015.
"""

from __future__ import annotations

import torch
from torch import nn

from edgesep.errors import InputError


class GlobalLayerNorm(nn.Module):
    """gLN: normalise over channels and time of each example (not causal).

    Shape: (B, C, N) -> (B, C, N)
    """

    def __init__(self, n_chan: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, n_chan, 1))
        self.beta = nn.Parameter(torch.zeros(1, n_chan, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(1, 2), keepdim=True)
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


class ChannelLayerNorm(nn.Module):
    """cLN: normalise over channels at each frame independently (causal, streaming-friendly).

    Shape: (B, C, N) -> (B, C, N)
    """

    def __init__(self, n_chan: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, n_chan, 1))
        self.beta = nn.Parameter(torch.zeros(1, n_chan, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


NORMS = ("gLN", "cLN", "BN", "none")
# the norms whose output at frame n depends on frame n alone (BN: in eval mode)
FRAME_WISE_NORMS = ("cLN", "BN", "none")


def make_norm(kind: str, n_chan: int) -> nn.Module:
    """``gLN`` (global), ``cLN`` (channel-wise), ``BN`` (BatchNorm1d) or ``none`` (identity)."""
    if kind == "gLN":
        return GlobalLayerNorm(n_chan)
    if kind == "cLN":
        return ChannelLayerNorm(n_chan)
    if kind == "BN":
        return nn.BatchNorm1d(n_chan)
    if kind == "none":
        return nn.Identity()
    raise InputError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")
