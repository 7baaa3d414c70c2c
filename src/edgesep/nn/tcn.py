"""Temporal convolutional network block: 1x1 conv -> depthwise dilated conv -> 1x1 convs.

Beyond the paper's block, three options serve edge devices:

- *Pyramid depthwise conv*: several depthwise convs of different kernel sizes (same dilation),
  summed; the block's receptive field is that of the largest.
- *Norm placement*: ``act_norm`` (the paper: conv -> act -> norm) or ``norm_act``
  (conv -> norm -> act), which lets a BatchNorm fold into the conv before it.
- *Parameter sharing*: a block can use another block's pointwise convs (in_conv, res_conv,
  skip_conv) and/or depthwise conv(s). The owner registers them; a borrowing block keeps a plain
  (unregistered) reference, so ``parameters()`` and ``state_dict()`` hold each shared weight
  once, under the owner's name, and safetensors (which refuses aliased tensors) saves it.
  Norms and activations always stay per block. A borrowed depthwise conv runs with the
  borrowing block's own dilation.

References: Luo & Mesgarani, "Conv-TasNet", IEEE/ACM TASLP 2019, Fig. 1(c); Hoang et al.,
"PydMobileNet: Improved Version of MobileNets with Pyramid Depthwise Separable Convolution",
2019; Tuan et al., "MiTAS: A Compressed Time-Domain Audio Separation Network with Parameter
Sharing", 2021.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError
from edgesep.nn.norm import make_norm

NORM_ORDERS = ("act_norm", "norm_act")


def make_act(kind: str, n_chan: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU()
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.1)
    raise InputError(f"unknown activation {kind!r}; choose prelu, relu or leaky_relu")


class TCNBlock(nn.Module):
    """One dilated depthwise-separable conv block with residual and optional skip output.

    Causal blocks pad on the left only, so frame n sees frames <= n. With ``kernel_sizes``
    (pyramid) every depthwise conv is padded as if alone (left-only when causal, centred
    otherwise) and their outputs are summed; only the first has a bias.
    ``pointwise_from`` / ``depthwise_from`` name a block whose convs this one shares.

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
        *,
        kernel_sizes: tuple[int, ...] = (),
        norm_order: str = "act_norm",
        pointwise_from: TCNBlock | None = None,
        depthwise_from: TCNBlock | None = None,
    ) -> None:
        super().__init__()
        if norm_order not in NORM_ORDERS:
            raise InputError(f"unknown norm_order {norm_order!r}; choose {NORM_ORDERS}")
        sizes = kernel_sizes or (kernel_size,)
        self.kernel_sizes = sizes
        self.dilation = dilation
        self.causal = causal
        self.norm_first = norm_order == "norm_act"
        self.shared: list[str] = []
        self.in_conv: nn.Conv1d
        self.dconv: nn.Conv1d | nn.ModuleList
        self.res_conv: nn.Conv1d
        self.skip_conv: nn.Conv1d | None
        if pointwise_from is None:
            self.in_conv = nn.Conv1d(bn_chan, hid_chan, 1)
        else:
            self._borrow("in_conv", pointwise_from.in_conv)
        self.act1 = make_act(act, hid_chan)
        self.norm1 = make_norm(norm, hid_chan)
        self.total_pad = (max(sizes) - 1) * dilation
        if depthwise_from is not None:
            if depthwise_from.kernel_sizes != sizes:
                raise InputError("a shared depthwise conv must have the same kernel sizes")
            self._borrow("dconv", depthwise_from.dconv)
        elif kernel_sizes:
            self.dconv = nn.ModuleList(
                nn.Conv1d(hid_chan, hid_chan, k, dilation=dilation, groups=hid_chan, bias=i == 0)
                for i, k in enumerate(sizes)
            )
        else:
            # a centred block's eval pass lets the conv pad (see forward), so the module owns it
            centred = not causal and self.total_pad % 2 == 0
            self.dconv = nn.Conv1d(
                hid_chan,
                hid_chan,
                kernel_size,
                dilation=dilation,
                groups=hid_chan,
                padding=self.total_pad // 2 if centred else 0,
            )
        # where each kernel's window starts in the input padded for the largest kernel, and how
        # many samples it leaves unused at the end
        self._crops: list[tuple[int, int]] = []
        for k in sizes:
            span = (k - 1) * dilation
            start = self.total_pad - span if causal else self.total_pad // 2 - span // 2
            self._crops.append((start, self.total_pad - span - start))
        # the depthwise conv's (padded) input, as a module: a place a quantizer can observe it
        # (the depthwise conv itself runs functionally, see _depthwise_one)
        self.dw_in_tap = nn.Identity()
        self.act2 = make_act(act, hid_chan)
        self.norm2 = make_norm(norm, hid_chan)
        if pointwise_from is None:
            self.res_conv = nn.Conv1d(hid_chan, bn_chan, 1)
            self.skip_conv = nn.Conv1d(hid_chan, skip_chan, 1) if skip_chan > 0 else None
        else:
            self._borrow("res_conv", pointwise_from.res_conv)
            self._borrow("skip_conv", pointwise_from.skip_conv)

    def _borrow(self, name: str, module: nn.Module | None) -> None:
        # a plain attribute, not a submodule: the owner alone registers (and saves) it
        object.__setattr__(self, name, module)
        if module is not None:
            self.shared.append(name)

    def extra_repr(self) -> str:
        shared = f", shares {'+'.join(self.shared)}" if self.shared else ""
        return f"kernel_sizes={self.kernel_sizes}, dilation={self.dilation}{shared}"

    def depthwise_convs(self) -> list[nn.Conv1d]:
        """The depthwise conv(s), owned or shared, in ``kernel_sizes`` order."""
        if isinstance(self.dconv, nn.ModuleList):
            return [m for m in self.dconv if isinstance(m, nn.Conv1d)]
        return [self.dconv]

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        """in_conv, act1 and norm1: what feeds the depthwise conv."""
        y = self.in_conv(x)
        return self.act1(self.norm1(y)) if self.norm_first else self.norm1(self.act1(y))

    def _post(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        y = self.act2(self.norm2(d)) if self.norm_first else self.norm2(self.act2(d))
        skip = self.skip_conv(y) if self.skip_conv is not None else None
        return x + self.res_conv(y), skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        y = self._pre(x)
        centred = not self.causal and len(self.kernel_sizes) == 1 and self.total_pad % 2 == 0
        if centred and not self.training:
            # zero padding done by the conv itself: the same function, and the exported graph
            # has no Pad op (ONNX Runtime's int8 graph kept it in float between Q/DQ pairs)
            return self._post(x, self._depthwise(y, padding=self.total_pad // 2))
        if self.causal:
            y = F.pad(y, (self.total_pad, 0))
        else:
            left = self.total_pad // 2
            y = F.pad(y, (left, self.total_pad - left))
        return self._post(x, self._depthwise(y))

    def step(
        self, x: torch.Tensor, history: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Causal frame-by-frame forward: ``history`` holds the last ``total_pad`` depthwise
        inputs (zeros at the start, like the offline left padding); ``valid`` (B, 1, k) zeroes
        frames that precede the signal so they never enter the history.

        Shape: (B, bn_chan, k), (B, hid_chan, total_pad), (B, 1, k) -> residual, skip, history
        """
        y = torch.cat([history, self._pre(x) * valid], dim=-1)
        # a constant negative start: the exported Slice needs no Shape/Gather/Sub arithmetic
        new_history = y[..., -self.total_pad :] if self.total_pad else y[..., :0]
        residual, skip = self._post(x, self._depthwise(y))
        return residual, skip, new_history

    def _depthwise(self, y: torch.Tensor, padding: int = 0) -> torch.Tensor:
        """The (sum of) dilated depthwise conv(s) of an input padded for the largest kernel
        (or, eval only, of an unpadded input with ``padding`` zeros on both sides)."""
        y = self.dw_in_tap(y)
        out: torch.Tensor | None = None
        for conv, (start, unused_end) in zip(self.depthwise_convs(), self._crops, strict=True):
            seg = y[..., start : y.shape[-1] - unused_end] if start or unused_end else y
            o = self._depthwise_one(conv, seg, padding)
            out = o if out is None else out + o
        assert out is not None
        return out

    def _depthwise_one(self, conv: nn.Conv1d, y: torch.Tensor, padding: int = 0) -> torch.Tensor:
        """One dilated depthwise conv (at this block's dilation) of its padded input.

        In training mode it is computed as a sum of shifted products: the same function and the
        same weights, but its backward pass ran about 4x faster than mkldnn's dilated depthwise
        convolution backward on a 2-core CPU. Eval and export use the real convolution.
        """
        weight, dilation = conv.weight, self.dilation
        if not self.training:
            if conv.dilation == (dilation,) and conv.padding == (padding,):
                # through the module, so graph tracers (torch-pruning's dependency graph) see it
                return conv(y)
            return F.conv1d(
                y, weight, conv.bias, padding=padding, dilation=dilation, groups=conv.groups
            )
        if padding:
            y = F.pad(y, (padding, padding))
        n_out = y.shape[-1] - (weight.shape[-1] - 1) * dilation
        out = y[..., :n_out] * weight[:, 0, 0, None]
        for k in range(1, weight.shape[-1]):
            start = k * dilation
            out = out + y[..., start : start + n_out] * weight[:, 0, k, None]
        if conv.bias is not None:
            out = out + conv.bias[:, None]
        return out
