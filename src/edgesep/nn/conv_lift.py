"""1-D convolutions run as 2-D ones on (B, C, 1, T) tensors, for faster ONNX Runtime graphs.

ONNX Runtime's CPU provider rewrites 2-D convolutions into its blocked NCHWc layout (fusing
the activation and the residual sum into the convolution) but leaves 1-D ones as plain
``Conv``, whose depthwise case runs one tiny GEMM per channel. On a streaming step graph, where
each call convolves a few frames, that fixed cost dominates: the 12-block bundled causal
Conv-TasNet's step graph ran 1.3x to 1.8x faster per hop (1 to 8 hops per call) with its
convolutions lifted to 2-D (benchmarks/runtime_latency.py, docs/RUNTIME.md).

:class:`Conv1dAs2d` is an :class:`torch.nn.Conv1d` (same parameters, same state dict, same
result on (B, C, T) input) that, given a (B, C, 1, T) input, computes the same convolution as
``conv2d`` with kernel (1, K) and returns (B, C_out, 1, T'). :func:`lift_conv1d` switches a
module's plain ``Conv1d`` submodules to it in place, so code written for (B, C, T) tensors runs
unchanged on (B, C, 1, T) ones wherever the other ops do not care about the rank (slices and
concatenations on the last axis, element-wise activations, residual sums).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError


class Conv1dAs2d(nn.Conv1d):
    """A Conv1d that also takes (B, C, 1, T) input, as a 2-D convolution with a (1, K) kernel.

    Shape: (B, C, T) -> (B, C_out, T') as Conv1d; (B, C, 1, T) -> (B, C_out, 1, T').
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise InputError("Conv1dAs2d: only numeric zero padding lifts to 2-D")
        return F.conv2d(
            x,
            self.weight.unsqueeze(2),
            self.bias,
            stride=(1, self.stride[0]),
            padding=(0, int(self.padding[0])),
            dilation=(1, self.dilation[0]),
            groups=self.groups,
        )


def lift_conv1d(module: nn.Module) -> int:
    """Make every plain ``nn.Conv1d`` inside ``module`` (itself included) a
    :class:`Conv1dAs2d`, in place; returns how many. Subclasses of Conv1d (e.g. the overlap-add
    decoder, whose forward reshapes) are left alone."""
    n = 0
    for m in module.modules():
        if type(m) is nn.Conv1d:
            m.__class__ = Conv1dAs2d
            n += 1
    return n
