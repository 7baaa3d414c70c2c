"""Normalisation layers of Conv-TasNet.

References: Luo & Mesgarani, "Conv-TasNet: Surpassing Ideal Time-Frequency Magnitude Masking for
Speech Separation", IEEE/ACM TASLP 2019 (global layer norm, gLN).
"""

from __future__ import annotations

import torch
from torch import nn


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


def make_norm(kind: str, n_chan: int) -> nn.Module:
    """``gLN`` (global) or ``cLN`` (channel-wise, causal)."""
    if kind == "gLN":
        return GlobalLayerNorm(n_chan)
    if kind == "cLN":
        return ChannelLayerNorm(n_chan)
    raise ValueError(f"unknown norm {kind!r}; choose gLN or cLN")
