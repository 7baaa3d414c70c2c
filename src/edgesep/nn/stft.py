"""STFT and inverse STFT written as (transposed) convolutions, so they export to ONNX.

ONNX's own STFT op has no inverse and is missing from many runtimes; a Conv1d with the windowed
DFT basis as its kernel (and a ConvTranspose1d for the inverse) is exact, exports with any opset,
and runs on every runtime. Complex numbers are kept as separate real and imaginary channels.

Framing is left to the caller: :class:`STFT` frames its input without padding (frame k covers
samples [k*hop, k*hop + n_fft)), and :class:`ISTFT` overlap-adds and divides by the *steady-state*
window overlap, a constant. Pad the input on the left by ``n_fft - hop`` (``STFT.left_pad``) and
every output sample from t=0 on lies in the steady state; that same alignment makes a causal
frame-by-frame implementation (one hop in, one hop out) identical to the offline one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError


def sqrt_hann(n_fft: int) -> torch.Tensor:
    """The square root of the periodic Hann window: analysis x synthesis gives a Hann window."""
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float64).sqrt()


def _basis(n_fft: int, window: torch.Tensor) -> torch.Tensor:
    """Windowed DFT rows: (2F, 1, n_fft), the F cosines then the F negated sines."""
    n_freq = n_fft // 2 + 1
    k = torch.arange(n_freq, dtype=torch.float64)[:, None]
    n = torch.arange(n_fft, dtype=torch.float64)[None, :]
    phase = 2 * math.pi * k * n / n_fft
    rows = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window
    return rows[:, None, :]


class STFT(nn.Module):
    """Shape: (B, T) -> real (B, F, N), imag (B, F, N) with N = 1 + (T - n_fft) // hop."""

    basis: torch.Tensor

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        if n_fft % hop:
            raise InputError(f"n_fft ({n_fft}) must be a multiple of hop ({hop})")
        self.n_fft, self.hop, self.n_freq = n_fft, hop, n_fft // 2 + 1
        self.left_pad = n_fft - hop
        self.register_buffer("basis", _basis(n_fft, sqrt_hann(n_fft)).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = F.conv1d(x.unsqueeze(1), self.basis, stride=self.hop)
        return spec[:, : self.n_freq], spec[:, self.n_freq :]


class ISTFT(nn.Module):
    """Shape: real, imag (B, F, N) -> (B, (N - 1) * hop + n_fft), steady-state normalised."""

    basis: torch.Tensor

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        if n_fft % hop:
            raise InputError(f"n_fft ({n_fft}) must be a multiple of hop ({hop})")
        self.n_fft, self.hop, self.n_freq = n_fft, hop, n_fft // 2 + 1
        window = sqrt_hann(n_fft)
        # inverse real DFT of a one-sided spectrum: bins 1..F-2 count twice (their mirror images)
        weight = torch.full((self.n_freq, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        basis = _basis(n_fft, window) * torch.cat([weight, weight])[:, :, None] / n_fft
        # the window overlap sum_k w(t - k hop)^2 is the same for every t in the steady state
        overlap = (window**2).reshape(n_fft // hop, hop).sum(0)
        basis = basis / overlap.repeat(n_fft // hop)
        self.register_buffer("basis", basis.float(), persistent=False)

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        spec = torch.cat([real, imag], dim=1)
        return F.conv_transpose1d(spec, self.basis, stride=self.hop).squeeze(1)
