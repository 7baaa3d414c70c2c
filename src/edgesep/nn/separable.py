"""Depthwise-separable 2-D convolution over (frequency, time), causal-capable and streamable.

A depthwise (kernel_f x kernel_t) conv followed by a pointwise (1x1) conv costs about
``kernel_f * kernel_t + C_out`` multiply-adds per input channel and bin instead of
``kernel_f * kernel_t * C_out``, which is what makes a spectrogram U-Net fit an edge budget.

Time is the last axis. Frequency is padded "same"; time is padded on the left only (causal) or
centred. The same block runs offline (``forward``: zero padding) or frame by frame (``step``:
the padding is replaced by a ring buffer of the block's last input frames), and the two agree
because the ring buffer starts as the zeros the offline padding would have put there.

References: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", arXiv:1704.04861, 2017; Ioffe & Szegedy, "Batch Normalization", ICML 2015.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError
from edgesep.nn.tcn import make_act

NORMS_2D = ("BN", "fLN", "none")


class FrameLayerNorm(nn.Module):
    """fLN: normalise over channels and frequency of each frame on its own; per-channel affine.

    Causal (frame n sees frame n only) and the same in training and inference, unlike BN.

    Shape: (B, C, F, N) -> (B, C, F, N)
    """

    def __init__(self, n_chan: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, n_chan, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, n_chan, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (B, C, F, N) -> (B, C, F, N)"""
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(1, 2), keepdim=True)
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


def make_norm_2d(kind: str, n_chan: int) -> nn.Module:
    """``BN`` (BatchNorm2d), ``fLN`` (:class:`FrameLayerNorm`) or ``none`` (identity)."""
    if kind == "BN":
        return nn.BatchNorm2d(n_chan)
    if kind == "fLN":
        return FrameLayerNorm(n_chan)
    if kind == "none":
        return nn.Identity()
    raise InputError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS_2D)}")


class SeparableConv2dBlock(nn.Module):
    """Depthwise (kernel_f x kernel_t) conv -> pointwise conv -> norm -> activation [+ input].

    ``depth_mult`` output channels per input channel in the depthwise conv (a 1-channel input
    needs more than one); ``residual`` adds the block's input (needs ``in_chan == out_chan``).
    Norm follows the pointwise conv so that a BatchNorm folds into it for inference.

    Shape: (B, in_chan, F, N) -> (B, out_chan, F, N)
    """

    def __init__(
        self,
        in_chan: int,
        out_chan: int,
        kernel_f: int = 3,
        kernel_t: int = 3,
        dilation_t: int = 1,
        causal: bool = False,
        norm: str = "BN",
        act: str = "relu",
        residual: bool = False,
        depth_mult: int = 1,
    ) -> None:
        super().__init__()
        if kernel_f % 2 == 0:
            raise InputError(f"kernel_f must be odd for 'same' frequency padding, got {kernel_f}")
        if residual and in_chan != out_chan:
            raise InputError("a residual block needs in_chan == out_chan")
        self.causal, self.residual = causal, residual
        self.in_chan = in_chan
        # frames of past input the time kernel needs beyond the current one
        self.context = (kernel_t - 1) * dilation_t
        self.depthwise = nn.Conv2d(
            in_chan,
            in_chan * depth_mult,
            (kernel_f, kernel_t),
            padding=(kernel_f // 2, 0),
            dilation=(1, dilation_t),
            groups=in_chan,
        )
        self.pointwise = nn.Conv2d(in_chan * depth_mult, out_chan, 1, bias=norm == "none")
        self.norm = make_norm_2d(norm, out_chan)
        self.act = make_act(act, out_chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Offline: zero padding in time (left only when causal, else centred).

        Shape: (B, in_chan, F, N) -> (B, out_chan, F, N)
        """
        if self.causal:
            padded = F.pad(x, (self.context, 0))
        else:
            left = self.context // 2
            padded = F.pad(x, (left, self.context - left))
        return self._conv_norm_act(padded, x)

    def step(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal frame-wise update: ``cache`` holds the last ``context`` input frames.

        Shape: x (B, in_chan, F, k), cache (B, in_chan, F, context) ->
        (B, out_chan, F, k), new cache (B, in_chan, F, context)
        """
        padded = torch.cat([cache, x], dim=-1)
        new_cache = padded[..., padded.shape[-1] - self.context :]
        return self._conv_norm_act(padded, x), new_cache

    def _conv_norm_act(self, padded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.act(self.norm(self.pointwise(self.depthwise(padded))))
        return x + y if self.residual else y
