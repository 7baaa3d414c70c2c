"""Multiply-accumulates counted from the executed graph with PyTorch's own FLOP counter.

``torch.utils.flop_counter.FlopCounterMode`` sees every matmul and convolution the forward pass
dispatches (RNNs decompose into matmuls, the STFT front ends are convolutions), so nothing is
estimated from a formula that could drift from the code. It counts 2 FLOPs per MAC and ignores
element-wise work (norms, activations, bias adds, mask products), which is what "MACs" means in
the separation literature (Conv-TasNet, GTCRN, DeepFilterNet report the same quantity).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgesep.models.base import Separator


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> dict[str, int]:
    """MACs of one eval-mode forward on ``inputs``, per aten op (``"total"`` sums them)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    per_op = {
        str(op).removeprefix("aten."): int(n) // 2
        for op, n in counter.get_flop_counts()["Global"].items()
    }
    per_op["total"] = int(counter.get_total_flops()) // 2
    return per_op


def macs_per_second(model: Separator, seconds: float = 4.0, n_chan: int = 1) -> int:
    """MACs per second of audio of a Separator, measured on ``seconds`` of mono (or C-channel)
    input at its own sample rate: the count of a long input divided by its duration, so fixed
    costs such as edge frames weigh as little as they do on real files. Build the model under
    ``torch.device("meta")`` to count without computing anything (no memory, no time)."""
    rate = model.sample_rate
    n_time = max(1, round(seconds * rate))
    # on the model's device: a model built on the meta device is counted without computing
    device = next(model.parameters()).device
    mix = torch.zeros(1, n_chan, n_time, device=device)
    return round(count_macs(model, mix)["total"] * rate / n_time)
