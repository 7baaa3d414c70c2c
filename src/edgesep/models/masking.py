"""The learned-basis masking skeleton that SuDoRM-RF and DPRNN share.

encoder (Conv1d + ReLU) -> gLN + 1x1 bottleneck -> the family's separator on the frame sequence
-> PReLU + 1x1 conv to one non-negative mask per source and basis -> masked bases -> transposed
conv decoder. Families set the separator (:meth:`MaskingSeparator.separate_frames`); the module
names (``encoder``, ``bottleneck``, ``blocks``, ``mask_conv``, ``decoder``) are the state dict's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError
from edgesep.models.base import Separator
from edgesep.models.convtasnet import _traceable_max
from edgesep.nn.uconv import global_layer_norm


class MaskingSeparator(Separator):
    """Shape: (B, C, T) -> (B, S, C, T); channels are separated independently."""

    kernel_size: int
    n_filters: int

    def _build(
        self,
        n_filters: int,
        kernel_size: int,
        stride: int,
        bn_chan: int,
        make_blocks: Callable[[], nn.Module],
    ) -> None:
        """Build the layers in the order encoder, bottleneck, blocks, masks, decoder (which fixes
        the seeded initialisation)."""
        self.kernel_size, self.n_filters = kernel_size, n_filters
        self.encoder = nn.Sequential(
            nn.Conv1d(1, n_filters, kernel_size, stride=stride, bias=False), nn.ReLU()
        )
        self.bottleneck = nn.Sequential(
            global_layer_norm(n_filters), nn.Conv1d(n_filters, bn_chan, 1)
        )
        self.blocks = make_blocks()
        self.mask_conv = nn.Sequential(
            nn.PReLU(bn_chan), nn.Conv1d(bn_chan, self.n_src * n_filters, 1)
        )
        self.decoder = nn.ConvTranspose1d(n_filters, 1, kernel_size, stride=stride, bias=False)

    def separate_frames(self, h: torch.Tensor) -> torch.Tensor:
        """The family's separator. Shape: (b, bn_chan, frames) -> (b, bn_chan, frames)."""
        out: torch.Tensor = self.blocks(h)
        return out

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 3:
            raise InputError(f"expected (B, C, T), got shape {tuple(mix.shape)}")
        n_batch, n_chan, n_time = mix.shape
        x = mix.reshape(n_batch * n_chan, 1, n_time)
        # pad so the frames tile the signal: T' = kernel + k * hop, k >= 0 (see ConvTasNet)
        short = self.kernel_size - n_time
        x = F.pad(x, (0, _traceable_max(short, short % self.hop if self.hop > 1 else 0)))
        w = self.encoder(x)  # (B*C, N, frames)
        h = self.separate_frames(self.bottleneck(w))
        masks = torch.relu(self.mask_conv(h)).unflatten(1, (self.n_src, self.n_filters))
        y = self.decoder((masks * w.unsqueeze(1)).flatten(0, 1))  # (B*C*S, 1, T')
        y = y[..., :n_time].reshape(n_batch, n_chan, self.n_src, n_time)
        return y.transpose(1, 2)
