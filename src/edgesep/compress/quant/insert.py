"""Where a model's fake quantizers go, and attaching them (also when replaying a record).

Four tensor groups, each switched on by :class:`QuantSpec`:

- ``weights``: every Conv / ConvTranspose / Linear weight, per output channel, symmetric, via a
  ``torch.nn.utils.parametrize`` parametrization (so functional uses of ``.weight`` see it too);
- ``activations``: the input of every such layer (a forward pre-hook), and the output of every
  such layer, activation module and ``*_tap`` identity, except a layer whose output goes straight
  into an activation module: there only the activation's output is quantized (a conv and its
  ReLU become one int8 kernel in ONNX Runtime). This mirrors what ORT's QDQ format wants: a
  DequantizeLinear on each conv input and a QuantizeLinear on its output;
- ``input``: the network's input signal (the mixture), a pre-hook on the model;
- ``output``: the network's output signals, a hook on the model; with ``output_residual`` a
  second quantizer codes what the first missed (FQSS's residual output stage).

Which layer feeds which activation is found once by running the model on a short noise input
and matching tensors by identity; the resulting *sites* (module names) are stored in the pass
record, so replaying never needs that trace. Quantizers are child modules (``in_quant``,
``out_quant``, ``input_quant``...), so their scales live in the state dict.

References: Cohen et al., "Fully Quantized Neural Networks for Audio Source Separation", IEEE
OJSP 2024 (quantizing input and output, residual output quantization); ONNX Runtime
quantization docs (QDQ format).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgesep.compress.quant.fakequant import FakeQuant, WeightQuant, qrange
from edgesep.errors import InputError
from edgesep.models.base import Separator
from edgesep.models.streaming import quantize_model_input, quantize_model_output

GROUPS = ("input", "output", "activations", "weights")
MAC_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.Linear,
)
ACT_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.PReLU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
)
TAP_SUFFIX = "_tap"


@dataclass(frozen=True)
class QuantSpec:
    """Bit widths and which tensor groups are quantized (``groups`` from :data:`GROUPS`)."""

    weight_bits: int = 8
    act_bits: int = 8
    input_bits: int = 8
    output_bits: int = 8
    groups: tuple[str, ...] = GROUPS
    act_signed: bool = False  # int8 activations (zero point) instead of uint8
    output_residual: bool = False  # second output quantizer on what the first missed

    def __post_init__(self) -> None:
        for g in self.groups:
            if g not in GROUPS:
                raise InputError(f"unknown tensor group {g!r}; choose from {', '.join(GROUPS)}")
        for b in (self.weight_bits, self.act_bits, self.input_bits, self.output_bits):
            qrange(b, True)  # raises on a bad width

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["groups"] = list(self.groups)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QuantSpec:
        return cls(**{**d, "groups": tuple(d.get("groups", GROUPS))})


def _is_tap(name: str, module: nn.Module) -> bool:
    return isinstance(module, nn.Identity) and name.rsplit(".", 1)[-1].endswith(TAP_SUFFIX)


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, tuple) and out:
        out = out[0]
    return out if isinstance(out, torch.Tensor) else None


@torch.no_grad()
def find_sites(model: Separator, n_time: int = 4000) -> dict[str, list[str]]:
    """Module names for input (``act_in``) and output (``act_out``) activation quantizers and
    for weight quantizers (``weights``), from one forward pass on seeded noise (eval mode).

    Outputs: every MAC layer not fused with a following activation, every activation module
    and ``*_tap``, and every container (e.g. a residual block) whose output (its first one,
    for tuples) feeds a MAC layer. Inputs: MAC layers whose input is not already the output
    of a quantized module (e.g. a conv after a padding or a product). So each tensor between
    two layers is quantized once, and a residual sum is quantized where it is formed, which
    lets ORT run the sum as QLinearAdd.
    """
    modules = dict(model.named_modules())
    calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    handles = []

    def record(name: str) -> Any:
        def hook(_m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            first = _first_tensor(out)
            if args and isinstance(args[0], torch.Tensor) and first is not None:
                calls.append((name, args[0], first))  # references keep the ids unique

        return hook

    for name, m in modules.items():
        if name:
            handles.append(m.register_forward_hook(record(name)))
    was_training = model.training
    model.eval()
    try:
        mix = 0.05 * torch.randn(1, 1, n_time, generator=torch.Generator().manual_seed(0))
        model(mix)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    producer: dict[int, str] = {}  # tensor id -> innermost module that returned it
    for name, _inp, out in calls:  # inner modules finish (and are recorded) first
        producer.setdefault(id(out), name)
    leaf_calls = [
        c
        for c in calls
        if isinstance(modules[c[0]], MAC_TYPES + ACT_TYPES) or _is_tap(c[0], modules[c[0]])
    ]
    act_inputs = {id(inp) for name, inp, _ in leaf_calls if isinstance(modules[name], ACT_TYPES)}
    act_out: list[str] = []
    for name, _inp, out in leaf_calls:
        if isinstance(modules[name], MAC_TYPES) and id(out) in act_inputs:
            continue  # fused with the activation that follows it
        if name not in act_out:
            act_out.append(name)
    # a tap that sees an already quantized tensor (no padding in between) needs no quantizer
    # a tap that sees an already quantized tensor (no padding in between) needs no quantizer;
    # taps return their input itself, so only non-tap quantized outputs count
    quantized_outputs = {
        id(out)
        for name, _inp, out in leaf_calls
        if name in act_out and not _is_tap(name, modules[name])
    }
    act_out = [
        n
        for n in act_out
        if not (
            _is_tap(n, modules[n])
            and all(id(i) in quantized_outputs for m, i, _ in leaf_calls if m == n)
        )
    ]
    mac_calls = [c for c in leaf_calls if isinstance(modules[c[0]], MAC_TYPES)]
    for _name, inp, _out in mac_calls:  # containers whose output feeds a MAC layer
        src = producer.get(id(inp))
        is_container = src is not None and next(modules[src].children(), None) is not None
        if is_container and src not in act_out:
            act_out.append(str(src))
    act_in: list[str] = []
    for name, inp, _out in mac_calls:
        if producer.get(id(inp)) not in act_out and name not in act_in:
            act_in.append(name)
    weights = [n for n, m in modules.items() if n and isinstance(m, MAC_TYPES)]
    return {"act_in": act_in, "act_out": act_out, "weights": weights}


def _quant_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (cast(FakeQuant, module.in_quant)(args[0]), *args[1:])


def _quant_output(module: nn.Module, _args: tuple[Any, ...], out: Any) -> Any:
    quant = cast(FakeQuant, module.out_quant)
    if isinstance(out, tuple):  # a container's first output (a residual block's sum)
        return (quant(out[0]), *out[1:])
    return quant(out)


def _quant_model_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (quantize_model_input(module, args[0]), *args[1:])


def _quant_model_output(
    module: nn.Module, _args: tuple[Any, ...], out: torch.Tensor
) -> torch.Tensor:
    return quantize_model_output(module, out)


def _weight_axis(m: nn.Module) -> int:
    return 1 if isinstance(m, nn.ConvTranspose1d | nn.ConvTranspose2d) else 0


def attach(model: Separator, spec: QuantSpec, sites: dict[str, list[str]]) -> Separator:
    """Add the quantizers of ``spec`` at ``sites`` to ``model`` (in place; returned).

    Activation quantizers start in ``"observe"`` mode with unit scales: calibrate them
    (:mod:`edgesep.compress.quant.calibrate`) or load their state before use.
    """
    if is_quantized(model):
        raise InputError("the model already holds fake quantizers")
    modules = dict(model.named_modules())
    missing = [n for k in ("act_in", "act_out", "weights") for n in sites.get(k, [])]
    missing = [n for n in missing if n not in modules]
    if missing:
        raise InputError(f"quant sites not in the model: {', '.join(missing[:5])}")
    signed = spec.act_signed
    if "weights" in spec.groups:
        for name in sites["weights"]:
            m = modules[name]
            wq = WeightQuant(m.weight, spec.weight_bits, _weight_axis(m))
            parametrize.register_parametrization(m, "weight", wq)
    if "activations" in spec.groups:
        for name in sites["act_in"]:
            modules[name].add_module("in_quant", FakeQuant(spec.act_bits, signed=signed))
            modules[name].register_forward_pre_hook(_quant_input)
        for name in sites["act_out"]:
            modules[name].add_module("out_quant", FakeQuant(spec.act_bits, signed=signed))
            modules[name].register_forward_hook(_quant_output)
    if "input" in spec.groups:
        model.add_module("input_quant", FakeQuant(spec.input_bits, signed=True))
        model.register_forward_pre_hook(_quant_model_input)
    if "output" in spec.groups:
        model.add_module("output_quant", FakeQuant(spec.output_bits, signed=True))
        if spec.output_residual:
            model.add_module("output_residual_quant", FakeQuant(spec.output_bits, signed=True))
        model.register_forward_hook(_quant_model_output)
    object.__setattr__(model, "quant_spec", spec)
    set_mode(model, "observe")
    return model


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, FakeQuant) for m in model.modules())


def activation_quantizers(model: nn.Module) -> dict[str, FakeQuant]:
    """Every activation/input/output quantizer of ``model`` by name (weights excluded)."""
    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, FakeQuant) and ".parametrizations." not in f".{n}"
    }


def weight_quantizers(model: nn.Module) -> dict[str, WeightQuant]:
    return {n: m for n, m in model.named_modules() if isinstance(m, WeightQuant)}


def set_mode(model: nn.Module, mode: str) -> None:
    """``quant`` / ``observe`` / ``off`` for every activation quantizer (weights stay on)."""
    for q in activation_quantizers(model).values():
        q.mode = mode


def group_of(name: str) -> str:
    """The tensor group of an activation quantizer's name."""
    if name == "input_quant":
        return "input"
    if name.startswith("output_"):
        return "output"
    return "activations"
