"""Multiply-accumulates counted from the executed graph with PyTorch's own FLOP counter.

``torch.utils.flop_counter.FlopCounterMode`` sees every matmul and convolution the forward pass
dispatches (the STFT front ends are convolutions too), so nothing is estimated from a formula that
could drift from the code. It counts 2 FLOPs per MAC and ignores element-wise work (norms,
activations, bias adds, mask products), which is what "MACs" means in the separation literature
(Conv-TasNet, GTCRN, DeepFilterNet report the same quantity).

The one exception is recurrent layers: a GRU dispatches a dozen small ops per time step, and
counting them one by one took minutes for a Band-Split RNN, and an LSTM on CPU runs as one fused
mkldnn op the counter has no formula for (it counts 0). Their forward is replaced, during
counting only, by the closed form (gates x (input x hidden + hidden x hidden) per step, layer and
direction) and zero outputs of the right shapes; a test holds that formula to the counter's own
figure on real layers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgesep.errors import InputError
from edgesep.models.base import Separator

_GATES = {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}


def rnn_macs(rnn: nn.RNNBase, n_steps: int, n_batch: int) -> int:
    """MACs of ``rnn`` over ``n_steps`` steps of ``n_batch`` sequences (the gates' matmuls)."""
    if rnn.proj_size:
        raise InputError("LSTM projections are not counted")
    gates = _GATES[type(rnn)]
    n_dirs = 2 if rnn.bidirectional else 1
    hidden, total = rnn.hidden_size, 0
    for layer in range(rnn.num_layers):
        n_in = rnn.input_size if layer == 0 else hidden * n_dirs
        total += n_dirs * gates * (n_in * hidden + hidden * hidden)
    return total * n_steps * n_batch


def _formula_forward(rnn: nn.RNNBase, tally: list[int]) -> Callable[..., Any]:
    def forward(x: torch.Tensor, hx: Any = None) -> tuple[torch.Tensor, Any]:
        batched = x.dim() == 3
        n_steps = x.shape[1 if rnn.batch_first else 0] if batched else x.shape[0]
        n_batch = x.shape[0 if rnn.batch_first else 1] if batched else 1
        tally.append(rnn_macs(rnn, n_steps, n_batch))
        n_dirs = 2 if rnn.bidirectional else 1
        out_shape = (*x.shape[:-1], n_dirs * rnn.hidden_size)
        state_shape = (rnn.num_layers * n_dirs, *((n_batch,) if batched else ()), rnn.hidden_size)
        out = x.new_zeros(out_shape)
        h = x.new_zeros(state_shape)
        return out, ((h, h.clone()) if isinstance(rnn, nn.LSTM) else h)

    return forward


@contextmanager
def _rnns_by_formula(model: nn.Module, tally: list[int]) -> Iterator[None]:
    rnns = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    for rnn in rnns:
        rnn.forward = _formula_forward(rnn, tally)
    try:
        yield
    finally:
        for rnn in rnns:
            del rnn.forward


def count_macs(model: nn.Module, *inputs: torch.Tensor, rnn_formula: bool = True) -> dict[str, int]:
    """MACs of one eval-mode forward on ``inputs``, per aten op (``"total"`` sums them; recurrent
    layers appear as ``"rnn"`` when ``rnn_formula``)."""
    was_training = model.training
    model.eval()
    tally: list[int] = []
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            if rnn_formula:
                with _rnns_by_formula(model, tally):
                    model(*inputs)
            else:
                model(*inputs)
    finally:
        model.train(was_training)
    flops = counter.get_flop_counts().get("Global", {})
    per_op = {str(op).removeprefix("aten."): int(n) // 2 for op, n in flops.items()}
    if tally:
        per_op["rnn"] = sum(tally)
    per_op["total"] = int(counter.get_total_flops()) // 2 + sum(tally)
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
