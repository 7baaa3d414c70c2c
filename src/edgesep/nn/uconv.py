"""The U-ConvBlock of SuDoRM-RF: successive depthwise downsampling, then upsampling and summing.

One block expands the bottleneck to ``hid_chan`` channels, analyses the sequence at
``depth`` resolutions (each a stride-2 depthwise conv of the one above), brings every coarse
level back up by nearest-neighbour upsampling and adds it to the next finer one, then projects
back to the bottleneck with a residual connection. The coarse levels give a large receptive field
at a fraction of a dilated TCN's cost, since most of the work happens on short sequences.

References: Tzinis, Wang & Smaragdis, "Sudo rm -rf: Efficient Networks for Universal Audio Source
Separation", MLSP 2020; Tzinis et al., "Compute and Memory Efficient Universal Sound Source
Separation", J. Signal Process. Syst. 2022 (SuDoRM-RF++).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError


def global_layer_norm(n_chan: int) -> nn.GroupNorm:
    """Global layer norm as one fused op: GroupNorm with one group and a per-channel affine map
    (the function of :class:`edgesep.nn.norm.GlobalLayerNorm`, in one kernel instead of several)."""
    return nn.GroupNorm(1, n_chan, eps=1e-8)


class UConvBlock(nn.Module):
    """Residual U-shaped depthwise block.

    Shape: (B, bn_chan, N) -> (B, bn_chan, N), any N >= 1
    """

    def __init__(self, bn_chan: int, hid_chan: int, depth: int = 4, kernel_size: int = 5) -> None:
        super().__init__()
        if depth < 1:
            raise InputError("a U-ConvBlock needs depth >= 1")
        if kernel_size % 2 == 0:
            raise InputError("U-ConvBlock kernel_size must be odd (symmetric padding)")
        pad = kernel_size // 2
        self.proj_in = nn.Sequential(
            nn.Conv1d(bn_chan, hid_chan, 1), global_layer_norm(hid_chan), nn.PReLU(hid_chan)
        )
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(
                    hid_chan, hid_chan, kernel_size, 1 if i == 0 else 2, pad, groups=hid_chan
                ),
                global_layer_norm(hid_chan),
            )
            for i in range(depth)
        )
        self.out = nn.Sequential(global_layer_norm(hid_chan), nn.PReLU(hid_chan))
        self.proj_out = nn.Conv1d(hid_chan, bn_chan, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj_in(x)
        outs = []
        for level in self.levels:
            h = level(h)
            outs.append(h)
        y = outs[-1]
        for finer in reversed(outs[:-1]):
            # a stride-2 conv gives ceil(n / 2) frames: upsample 2x and crop to the finer length
            y = finer + F.interpolate(y, scale_factor=2.0, mode="nearest")[..., : finer.shape[-1]]
        return x + self.proj_out(self.out(y))
