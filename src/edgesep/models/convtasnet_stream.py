"""The streaming core of a causal Conv-TasNet: one encoder frame per hop L/2.

A call takes k hops of new samples and returns k hops of output, one hop late
(``stream_core_delay = L/2``), so ``step`` lags by ``L/2 + L/2 - 1 = L - 1`` samples, the
model's lookahead. The state is a flat tensor list (an ONNX step graph's explicit inputs):

- ``primed`` (B, 1, 1): 0 before the first call, then 1. The first call's first frame would
  start half a frame before t=0, where the offline model has no frame; it is zeroed, and so it
  never enters a history or the output.
- ``enc_tail`` (B, L/2): the last half frame of input, the start of the next frame.
- ``block{i}_hist`` (B, H, (P_max - 1) * dilation_i): the last depthwise inputs of TCN block i
  (after its in_conv, norm and activation; the largest kernel's span for pyramid convs): the
  offline left padding, then the past.
- ``dec_tail`` (B, S, L/2): the second half of the last decoded frame, which overlaps the next.

Each call computes only its k new frames; no history is recomputed. Everything is tensor ops
with no data-dependent Python branching, so ``torch.onnx.export(dynamo=False)`` with a fixed k
traces it (see ``edgesep.export.streaming``).

References: Luo & Mesgarani, "Conv-TasNet", IEEE/ACM TASLP 2019 (the causal configuration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from edgesep.errors import InputError
from edgesep.nn.conv_lift import Conv1dAs2d

if TYPE_CHECKING:
    from edgesep.models.convtasnet import ConvTasNet


def core_state_names(model: ConvTasNet) -> list[str]:
    """Names of the tensors of :func:`init_core_state`, in order."""
    blocks = [f"block{i}_hist" for i in range(len(model.blocks))]
    return ["primed", "enc_tail", *blocks, "dec_tail"]


def init_core_state(model: ConvTasNet, n_batch: int) -> list[torch.Tensor]:
    """Zeros: no frame seen, silence before t=0, zero padding in every block's history."""
    if not model.causal:
        raise InputError("ConvTasNet: streaming needs a causal config (causal=True)")
    ref = model.encoder.weight
    c = model.config

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=ref.dtype, device=ref.device)

    # each block's own width (structured pruning may leave blocks narrower than hid_chan)
    hists = [zeros(n_batch, b.in_conv.out_channels, b.total_pad) for b in model.tcn_blocks()]
    return [
        zeros(n_batch, 1, 1),
        zeros(n_batch, c.kernel_size - model.hop),
        *hists,
        zeros(n_batch, model.n_src, model.hop),
    ]


def step_core(
    model: ConvTasNet, x: torch.Tensor, state: list[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Shape: (B, k * hop) -> (B, S, k * hop), k >= 1; returns the new state (input untouched)."""
    primed, enc_tail, *hists, dec_tail = state
    hop = model.hop
    n_batch = x.shape[0]
    # convs lifted to 2-D (export.streaming): the TCN runs on (B, C, 1, k), states stay 3-D
    rank4 = isinstance(model.encoder, Conv1dAs2d)
    frames = torch.cat([enc_tail, x], dim=-1)  # k frames of L samples, hop apart
    w = model.encoder(frames[:, None, None] if rank4 else frames.unsqueeze(1))  # (B, N, [1,] k)
    # frame 0 of the first call starts at t = -hop: the offline model has no such frame
    ones = torch.ones_like(w[:, :1, ..., 1:])
    valid = torch.cat([primed.unsqueeze(2) if rank4 else primed, ones], dim=-1)  # (B, 1, [1,] k)
    w = w * valid
    h = model.bottleneck(model.in_norm(w))
    new_hists: list[torch.Tensor] = []
    skip_sum: torch.Tensor | None = None
    for block, hist in zip(model.tcn_blocks(), hists, strict=True):
        h, skip, hist = block.step(h, hist.unsqueeze(2) if rank4 else hist, valid)
        new_hists.append(hist.squeeze(2) if rank4 else hist)
        if skip is not None:
            skip_sum = skip if skip_sum is None else skip_sum + skip
    masks = model.masks_from_features(skip_sum if skip_sum is not None else h)  # (B, S, N, k)
    w = w.squeeze(2) if rank4 else w
    y = model.decoder((masks * w.unsqueeze(1)).flatten(0, 1))  # (B*S, 1, (k + 1) * hop)
    y = y.reshape(n_batch, model.n_src, -1)
    # the previous call's last half frame overlaps this call's first hop (constant slices:
    # the step graph then has no shape arithmetic, a fixed per-node cost at a few frames)
    out = torch.cat([y[..., :hop] + dec_tail, y[..., hop:-hop]], dim=-1)
    tail = model.config.kernel_size - hop  # enc_tail's length, a Python int when traced
    new_state = [torch.ones_like(primed), frames[..., -tail:] if tail else frames[..., :0]]
    return out, [*new_state, *new_hists, y[..., -hop:]]
