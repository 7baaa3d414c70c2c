"""Fake quantization: b-bit uniform quantize-dequantize with learnable (LSQ) scales.

Weights are quantized per output channel and symmetric (zero point 0, integers in
[-2^(b-1), 2^(b-1) - 1]); activations per tensor and asymmetric (a zero point, integers in
[0, 2^b - 1], or [-2^(b-1), 2^(b-1) - 1] when ``signed``). In the graph a :class:`FakeQuant`
computes ``(clamp(round(x / s) + z, qmin, qmax) - z) * s``; rounding passes gradients straight
through (STE) and the scale ``s`` is learned with the LSQ gradient, so QAT learns the ranges.
The parameter is ``log s``: the fine-tuning optimiser is Adam, whose steps are about ``lr`` in
the parameter whatever the gradient's size (LSQ's gradient scaling was for SGD), so a raw scale
of 0.004 (a speech input at 8 bits) would move by a quarter of itself in 10 steps at lr 1e-4;
in the log domain a step changes it by about 0.01 %.

While ``torch.onnx`` traces the model, a quantizer calls ``torch.fake_quantize_per_*_affine``
instead, which the exporter writes as a QuantizeLinear/DequantizeLinear pair; ONNX only has
8-bit integers there, so export needs ``bits == 8``. The formula is the same (round half to
even), so eager and exported graphs agree.

Hand-written rather than ``torch.ao.quantization``: its eager mode needs QuantStub edits in the
model and its FX mode cannot trace the separators' length-dependent forward; its learnable
fake-quant ops have no ONNX symbolic.

References: Esser et al., "Learned Step Size Quantization", ICLR 2020 (LSQ); Bengio et al.,
"Estimating or Propagating Gradients Through Stochastic Neurons", 2013 (STE); Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference",
CVPR 2018 (asymmetric activations, per-channel weights).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgesep.errors import InputError

MIN_BITS, MAX_BITS = 4, 16
MODES = ("quant", "observe", "off")


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """Integer range of a b-bit quantizer: signed [-2^(b-1), 2^(b-1)-1] or unsigned [0, 2^b-1]."""
    if not MIN_BITS <= bits <= MAX_BITS:
        raise InputError(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {bits}")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def fake_quant(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    qmin: int,
    qmax: int,
    axis: int | None = None,
) -> torch.Tensor:
    """``(clamp(round(x / s) + z, qmin, qmax) - z) * s`` with STE rounding; ``axis`` broadcasts a
    per-channel ``scale`` / ``zero_point`` (C,) along that dimension of ``x``.

    Shape: x (...), scale and zero_point (1,) or (C,) -> (...)
    """
    if axis is not None:
        view = [1] * x.dim()
        view[axis] = -1
        scale, zero_point = scale.view(view), zero_point.view(view)
    q = torch.clamp(_round_ste(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


class FakeQuant(nn.Module):
    """A b-bit quantize-dequantize with a learnable scale (LSQ) and a fixed zero point.

    ``axis=None``: one scale for the tensor (activations); ``axis=k``: one per index of
    dimension k (``n_channels`` of them; weights). ``symmetric`` fixes the zero point at 0 (then
    the range is signed). ``mode``: ``"quant"`` (quantize), ``"observe"`` (pass through and feed
    ``observer``, for calibration) or ``"off"`` (pass through). Ranges are set by
    :meth:`set_range`.

    Shape: (...) -> (...)
    """

    zero_point: torch.Tensor

    def __init__(
        self,
        bits: int = 8,
        *,
        symmetric: bool = False,
        signed: bool = False,
        axis: int | None = None,
        n_channels: int = 1,
    ) -> None:
        super().__init__()
        self.bits = bits
        self.symmetric = symmetric
        self.signed = signed or symmetric
        self.axis = axis
        self.qmin, self.qmax = qrange(bits, self.signed)
        self.log_scale = nn.Parameter(torch.zeros(n_channels if axis is not None else 1))
        self.register_buffer("zero_point", torch.zeros_like(self.log_scale.data))
        self.mode = "quant"
        self.observer: Any = None

    @property
    def scale(self) -> torch.Tensor:
        """The step size s (from the ``log_scale`` parameter)."""
        return self.log_scale.exp()

    def extra_repr(self) -> str:
        kind = "symmetric" if self.symmetric else "asymmetric"
        axis = "per-tensor" if self.axis is None else f"per-channel axis={self.axis}"
        return f"bits={self.bits}, {kind}, [{self.qmin}, {self.qmax}], {axis}"

    @torch.no_grad()
    def set_range(self, lo: torch.Tensor | float, hi: torch.Tensor | float) -> None:
        """Scale and zero point covering [lo, hi] (extended to include 0, so 0 is exact).

        Symmetric: s = max(|lo|, |hi|) / qmax, z = 0. Asymmetric: s = (hi - lo) / (qmax - qmin),
        z = qmin - round(lo / s).
        """
        lo_t = torch.as_tensor(lo, dtype=torch.float32).clamp(max=0.0).reshape(-1)
        hi_t = torch.as_tensor(hi, dtype=torch.float32).clamp(min=0.0).reshape(-1)
        if self.symmetric:
            scale = torch.maximum(lo_t.abs(), hi_t) / self.qmax
            zero = torch.zeros_like(scale)
        else:
            scale = (hi_t - lo_t) / (self.qmax - self.qmin)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            zero = torch.clamp(self.qmin - torch.round(lo_t / scale), self.qmin, self.qmax)
        scale = torch.where(scale > 0, scale, torch.full_like(scale, 1e-8))
        self.log_scale.copy_(scale.log().expand_as(self.log_scale))
        self.zero_point.copy_(zero.expand_as(self.zero_point))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "off":
            return x
        if self.mode == "observe":
            if self.observer is not None:
                self.observer.update(x.detach())
            return x
        if torch.onnx.is_in_onnx_export():
            return self._export_forward(x)
        return fake_quant(x, self.scale, self.zero_point, self.qmin, self.qmax, self.axis)

    def _export_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The torch op that the ONNX exporter writes as QuantizeLinear + DequantizeLinear.

        Fewer than 8 bits export in the 8-bit container: the input is first clamped to the
        b-bit grid's range, so the integers stay within b bits (e.g. 7-bit weights, what ORT
        calls reduce_range).
        """
        if self.bits > 8:
            raise InputError(f"QDQ export needs quantizers of at most 8 bits, got {self.bits}")
        qmin, qmax = qrange(8, self.signed)
        if self.bits < 8:
            # plain values again, so the clamp bounds are constants of the trace
            scale, zero = self.scale.detach().tolist(), self.zero_point.tolist()
            lo = torch.tensor([(self.qmin - z) * s for s, z in zip(scale, zero, strict=True)])
            hi = torch.tensor([(self.qmax - z) * s for s, z in zip(scale, zero, strict=True)])
            if self.axis is not None:
                view = [1] * x.dim()
                view[self.axis] = -1
                lo, hi = lo.view(view), hi.view(view)
            x = torch.clamp(x, lo, hi)
        # plain Python values: the trace records them as constants, not as graph arithmetic
        scales = self.scale.detach().clamp_min(1e-12).tolist()
        zeros = [int(z) for z in self.zero_point.tolist()]
        if self.axis is None:
            return torch.fake_quantize_per_tensor_affine(x, scales[0], zeros[0], qmin, qmax)
        return torch.fake_quantize_per_channel_affine(
            x,
            torch.tensor(scales, dtype=torch.float32),
            torch.tensor(zeros, dtype=torch.int32),
            self.axis % x.dim(),
            qmin,
            qmax,
        )


class WeightQuant(nn.Module):
    """A weight parametrization (``torch.nn.utils.parametrize``): per-channel symmetric
    fake-quant of a conv/linear weight along its output-channel axis, so every use of
    ``module.weight`` (also functional ones) sees the quantized weight.

    Shape: weight (C_out, ...) -> (C_out, ...); ConvTranspose (C_in, C_out, K): axis 1
    """

    def __init__(self, weight: torch.Tensor, bits: int = 8, axis: int = 0) -> None:
        super().__init__()
        self.quant = FakeQuant(bits, symmetric=True, axis=axis, n_channels=weight.shape[axis])
        self.init_minmax(weight)

    @torch.no_grad()
    def init_minmax(self, weight: torch.Tensor) -> None:
        """Full-range scales: max |w| of each channel maps to qmax."""
        axis = self.quant.axis or 0
        dims = [d for d in range(weight.dim()) if d != axis]
        amax = weight.detach().abs().amax(dim=dims)
        self.quant.set_range(-amax, amax)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.quant(weight)
