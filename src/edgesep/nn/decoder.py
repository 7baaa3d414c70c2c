"""Frame decoders that map N-channel frames back to a waveform by overlap-add at hop L/2.

:class:`torch.nn.ConvTranspose1d` (stride L/2) does this in one op, but ONNX Runtime's int8
quantizer leaves ConvTranspose in float. :class:`OverlapAddDecoder` computes the same function
as a pointwise Conv1d (N -> L samples per frame, quantizable) followed by :func:`overlap_add`,
written with slice, pad, add, transpose and reshape only.

References: Luo & Mesgarani, "Conv-TasNet", IEEE/ACM TASLP 2019 (the learned decoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Sum frames of length 2 * hop placed hop apart.

    Frame n covers output samples [n * hop, n * hop + 2 * hop), as ConvTranspose1d with stride
    hop and kernel 2 * hop places it.

    Shape: (B, 2 * hop, n) -> (B, 1, (n + 1) * hop)
    """
    head = F.pad(frames[:, :hop], (0, 1))  # first halves: output segments 0..n-1
    tail = F.pad(frames[:, hop:], (1, 0))  # second halves: segments 1..n
    return (head + tail).transpose(1, 2).reshape(frames.shape[0], 1, -1)


class OverlapAddDecoder(nn.Conv1d):
    """Pointwise Conv1d (N -> L, no bias) then :func:`overlap_add` at hop L/2.

    Equals ``ConvTranspose1d(N, 1, L, stride=L/2, bias=False)`` whose weight ``w`` (N, 1, L)
    is this one's ``weight.permute(1, 2, 0)``; the weight here is (L, N, 1).

    Shape: (B, N, n) -> (B, 1, (n + 1) * L/2)
    """

    def __init__(self, n_filters: int, kernel_size: int) -> None:
        if kernel_size % 2:
            raise InputError("OverlapAddDecoder: kernel_size must be even (hop is half of it)")
        super().__init__(n_filters, kernel_size, 1, bias=False)
        self.hop = kernel_size // 2
        # the conv's frames before overlap-add, as a module a quantizer can observe
        self.frames_tap = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return overlap_add(self.frames_tap(super().forward(x)), self.hop)
