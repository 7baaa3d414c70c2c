"""Post-training quantization as a compression pass (``quantize-ptq``), and the replayer that
rebuilds fake-quantized models when an artifact is loaded.

The pass folds BatchNorms into their convs where the family can (so weights are quantized in the
form a device runs, and the config becomes ``norm="none"``), inserts fake quantizers at the
sites :func:`~edgesep.compress.quant.insert.find_sites` finds, and calibrates the activation
ranges on ``ctx.calibration`` with streamed statistics. Its record holds the spec and the sites;
the scales are in the weights, so the replayer only re-attaches the quantizers. QAT and FQSS
(:mod:`.qat`) start from the same preparation and share the replayer.

References: Nagel et al., "A White Paper on Neural Network Quantization", 2021.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from edgesep.compress.base import PASSES, PassContext, PassResult, clone
from edgesep.compress.quant.calibrate import calibrate
from edgesep.compress.quant.insert import (
    GROUPS,
    QuantSpec,
    activation_quantizers,
    attach,
    find_sites,
    weight_quantizers,
)
from edgesep.compress.records import register_replayer
from edgesep.errors import InputError
from edgesep.models.artifact import model_records, set_records
from edgesep.models.base import Separator

QUANT_PASSES = ("quantize-ptq", "qat", "fqss")


def fold_if_possible(model: Separator) -> Separator:
    """``model.for_export()`` when that folds norms (a new model), else ``model``."""
    folded = model.for_export()
    if folded is not model:
        set_records(folded, model_records(model))
    return folded


@dataclass(frozen=True)
class QuantParams:
    """The quantization parameters every quant pass shares (see :class:`QuantSpec`)."""

    weight_bits: int = 8
    act_bits: int = 8
    input_bits: int = 8
    output_bits: int = 8
    groups: tuple[str, ...] = GROUPS
    act_signed: bool = False
    output_residual: bool = False
    method: str = "minmax"  # activation ranges: minmax | percentile | mse
    percentile: float = 99.99
    weight_method: str = "minmax"  # minmax | mse

    def spec(self) -> QuantSpec:
        return QuantSpec(
            weight_bits=self.weight_bits,
            act_bits=self.act_bits,
            input_bits=self.input_bits,
            output_bits=self.output_bits,
            groups=tuple(self.groups),
            act_signed=self.act_signed,
            output_residual=self.output_residual,
        )


def quantize_model(
    model: Separator, params: QuantParams, ctx: PassContext, who: str
) -> tuple[Separator, dict[str, Any], dict[str, Any]]:
    """Clone, fold, insert and calibrate: (new model, record, stats)."""
    if ctx.calibration is None:
        raise InputError(f"{who}: needs calibration batches (ctx.calibration)")
    out = fold_if_possible(clone(model))
    if out is model:
        out = clone(model)
    spec = params.spec()
    sites = find_sites(out)
    attach(out, spec, sites)
    ranges = calibrate(
        out,
        ctx.calibration,
        method=params.method,
        percentile=params.percentile,
        weight_method=params.weight_method,
        progress=ctx.progress,
    )
    record = {"spec": spec.to_json(), "sites": sites}
    stats = {
        "n_activation_quantizers": len(activation_quantizers(out)),
        "n_weight_quantizers": len(weight_quantizers(out)),
        "folded_norms": out.config != model.config,
        "ranges": {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in ranges.items()},
    }
    return out.eval(), record, stats


@PASSES.register("quantize-ptq")
@dataclass(frozen=True)
class QuantizePTQ(QuantParams):
    """Fake-quantize weights, activations, input and output; ranges from calibration."""

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        out, record, stats = quantize_model(model, self, ctx, "quantize-ptq")
        return PassResult(out, record, stats)


def replay_quant(model: Separator, record: dict[str, Any]) -> Separator:
    """Re-attach the quantizers of a quant pass record (scales come with the weights)."""
    model = fold_if_possible(model)
    spec = QuantSpec.from_json(dict(record["spec"]))
    sites = {k: list(v) for k, v in dict(record["sites"]).items()}
    attach(model, spec, sites)
    for q in activation_quantizers(model).values():
        q.mode = "quant"
    return model


for _name in QUANT_PASSES:
    register_replayer(_name)(replay_quant)


@PASSES.register("fp16")
@dataclass(frozen=True)
class Float16:
    """Round every float parameter and buffer to float16 precision (values only; the model
    still computes in float32, a float16 runtime gives the same weights)."""

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        out = clone(model)
        worst = 0.0
        with torch.no_grad():
            for t in [*out.parameters(), *out.buffers()]:
                if t.is_floating_point():
                    rounded = t.half().float()
                    if t.numel():
                        worst = max(worst, float((rounded - t).abs().max()))
                    t.copy_(rounded)
        return PassResult(out, {}, {"max_abs_change": worst})
