"""Temporal convolutional network block: 1x1 conv -> depthwise dilated conv -> 1x1 convs.

References: Luo & Mesgarani, "Conv-TasNet", IEEE/ACM TASLP 2019, Fig. 1(c).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.nn.norm import make_norm


def make_act(kind: str, n_chan: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU()
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.1)
    raise ValueError(f"unknown activation {kind!r}; choose prelu, relu or leaky_relu")


class TCNBlock(nn.Module):
    """One dilated depthwise-separable conv block with residual and optional skip output.

    Causal blocks pad on the left only, so frame n sees frames <= n.

    Shape: (B, bn_chan, N) -> residual (B, bn_chan, N), skip (B, skip_chan, N) or None
    """

    def __init__(
        self,
        bn_chan: int,
        hid_chan: int,
        skip_chan: int,
        kernel_size: int,
        dilation: int,
        norm: str = "gLN",
        act: str = "prelu",
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.in_conv = nn.Conv1d(bn_chan, hid_chan, 1)
        self.act1 = make_act(act, hid_chan)
        self.norm1 = make_norm(norm, hid_chan)
        self.total_pad = (kernel_size - 1) * dilation
        self.causal = causal
        self.dconv = nn.Conv1d(hid_chan, hid_chan, kernel_size, dilation=dilation, groups=hid_chan)
        self.act2 = make_act(act, hid_chan)
        self.norm2 = make_norm(norm, hid_chan)
        self.res_conv = nn.Conv1d(hid_chan, bn_chan, 1)
        self.skip_conv = nn.Conv1d(hid_chan, skip_chan, 1) if skip_chan > 0 else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        y = self.norm1(self.act1(self.in_conv(x)))
        if self.causal:
            y = F.pad(y, (self.total_pad, 0))
        else:
            left = self.total_pad // 2
            y = F.pad(y, (left, self.total_pad - left))
        y = self.norm2(self.act2(self._depthwise(y)))
        skip = self.skip_conv(y) if self.skip_conv is not None else None
        return x + self.res_conv(y), skip

    def _depthwise(self, y: torch.Tensor) -> torch.Tensor:
        """The dilated depthwise conv of a padded input.

        In training mode it is computed as a sum of shifted products: the same function and the
        same weights, but its backward pass ran about 4x faster than mkldnn's dilated depthwise
        convolution backward on a 2-core CPU. Eval and export use the real Conv1d.
        """
        if not self.training:
            return self.dconv(y)
        weight, dilation = self.dconv.weight, self.dconv.dilation[0]
        n_out = y.shape[-1] - self.total_pad
        out = y[..., :n_out] * weight[:, 0, 0, None]
        for k in range(1, weight.shape[-1]):
            start = k * dilation
            out = out + y[..., start : start + n_out] * weight[:, 0, k, None]
        if self.dconv.bias is not None:
            out = out + self.dconv.bias[:, None]
        return out
