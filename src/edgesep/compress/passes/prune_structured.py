"""Structured pruning: remove whole TCN channels so the model is physically smaller.

Torch-Pruning's dependency graph does the channel surgery: pruning a TCN block's hidden channel
(the output of its ``in_conv``) removes the coupled slices everywhere they live: the PReLU (a
single shared slope, untouched), both norms' gamma/beta (declared as unwrapped parameters, dim 1),
the depthwise conv (its groups follow its channels), the residual and skip convs' inputs. The
bottleneck width (coupled through every residual sum), the encoder basis and the mask/decoder
layers are left alone (``ignored_layers``), so residual/skip shapes stay consistent. Importance
is selectable: ``l1`` / ``l2`` (group magnitude: a channel's L1 / squared-L2 norm over its
slice of every coupled layer, averaged over the layers), ``lamp`` and ``fpgm``. With
``iterative_steps`` > 1 the ratio is reached in that many steps, each followed by
``finetune_steps`` of fine-tuning (prune -> fine-tune -> prune).

The record holds Torch-Pruning's pruning history (root layer, out/in, indices per step); the
replayer rebuilds the dependency graph on a fresh model and replays it, giving the same shapes.

References: Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023; Li et al.,
"Pruning Filters for Efficient ConvNets", ICLR 2017; Tan & Wang, "Towards model compression for
deep learning based speech enhancement", IEEE/ACM TASLP 2021.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgesep.bench.macs import macs_per_second
from edgesep.compress.base import PASSES, PassContext, PassResult, clone
from edgesep.compress.records import register_replayer
from edgesep.errors import InputError
from edgesep.models.base import Separator
from edgesep.models.convtasnet import ConvTasNet
from edgesep.nn.norm import ChannelLayerNorm, GlobalLayerNorm
from edgesep.nn.tcn import TCNBlock

IMPORTANCES = ("l1", "l2", "lamp", "fpgm")


def _tp() -> Any:
    """Torch-Pruning, imported when a pruning or its replay needs it (an optional dependency:
    loading an artifact that holds no structured pruning must not need it)."""
    try:
        import torch_pruning
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "structured pruning needs Torch-Pruning: pip install 'edgesep[compress]'"
        ) from None
    return torch_pruning


TRACE_SAMPLES = 1600


def _importance(name: str) -> Any:
    """Group importances: a channel's |w|^p summed over its slice of each coupled layer, then
    averaged over the layers (Torch-Pruning's group magnitude); LAMP and FPGM from the same."""
    if name in ("l1", "l2"):
        return _tp().importance.GroupMagnitudeImportance(p=int(name[1]), group_reduction="mean")
    if name == "lamp":
        return _tp().importance.LAMPImportance(p=2)
    if name == "fpgm":
        return _tp().importance.FPGMImportance(p=2)
    raise InputError(f"unknown importance {name!r}; choose one of {', '.join(IMPORTANCES)}")


def as_convtasnet(model: Separator, who: str) -> ConvTasNet:
    """``model`` as a Conv-TasNet without parameter sharing, else a clear error."""
    if not isinstance(model, ConvTasNet):
        raise InputError(f"{who}: supports Conv-TasNet models, got family {model.family!r}")
    cfg = model.config
    if cfg.share_depthwise != "none" or cfg.share_pointwise != "none":
        raise InputError(f"{who}: models with MiTAS parameter sharing are not supported")
    return model


def tcn_blocks(model: Separator, who: str) -> list[TCNBlock]:
    """The TCN blocks of a Conv-TasNet without parameter sharing, else a clear error."""
    return as_convtasnet(model, who).tcn_blocks()


def graph_spec(model: Separator) -> tuple[list[nn.Module], list[tuple[nn.Parameter, int]]]:
    """(ignored layers, unwrapped norm parameters) of a Conv-TasNet for Torch-Pruning."""
    net = as_convtasnet(model, "prune-structured")
    ignored: list[nn.Module] = [net.encoder, net.bottleneck, net.mask_conv, net.decoder]
    for b in net.tcn_blocks():
        ignored.append(b.res_conv)
        if b.skip_conv is not None:
            ignored.append(b.skip_conv)
    unwrapped = [
        (p, 1)
        for m in model.modules()
        if isinstance(m, GlobalLayerNorm | ChannelLayerNorm)
        for p in (m.gamma, m.beta)
    ]
    return ignored, unwrapped


def _example(model: Separator) -> torch.Tensor:
    return torch.zeros(1, 1, TRACE_SAMPLES)


def _trace_forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The model's output plus the last block's residual output: with a skip path that residual
    feeds nothing, so without it the tracer would not see (nor prune) the last res_conv."""
    tails: list[torch.Tensor] = []
    blocks = list(as_convtasnet(model, "prune-structured").tcn_blocks())  # type: ignore[arg-type]
    handle = blocks[-1].register_forward_hook(lambda m, i, o: tails.append(o[0]))
    try:
        out = model(x)
    finally:
        handle.remove()
    return (out, *tails)


def block_widths(model: Separator) -> list[int]:
    """Hidden channels of every TCN block."""
    return [int(b.in_conv.out_channels) for b in tcn_blocks(model, "block_widths")]


@PASSES.register("prune-structured")
@dataclass(frozen=True)
class StructuredPrune:
    """Remove ``ratio`` of every TCN block's hidden channels (or globally, ``global_pruning``)."""

    ratio: float = 0.5
    importance: str = "l2"
    global_pruning: bool = False
    iterative_steps: int = 1
    finetune_steps: int = 0  # per step; needs ctx.fit when > 0
    round_to: int = 0  # channels kept rounded to a multiple (0: no rounding)
    lr: float = 0.0  # fine-tuning learning rate (0: the fit's default)

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        if not 0.0 <= self.ratio < 1.0:
            raise InputError(f"prune-structured: ratio must be in [0, 1), got {self.ratio}")
        if self.iterative_steps < 1:
            raise InputError("prune-structured: iterative_steps must be at least 1")
        _importance(self.importance)
        fit = ctx.require_fit("prune-structured") if self.finetune_steps > 0 else None
        out = clone(model).eval()
        before = {"n_params": out.n_params(), "macs_per_second": macs_per_second(out)}
        widths_before = block_widths(out)
        ignored, unwrapped = graph_spec(out)
        pruner = _tp().pruner.BasePruner(
            out,
            _example(out),
            importance=_importance(self.importance),
            global_pruning=self.global_pruning,
            pruning_ratio=self.ratio,
            iterative_steps=self.iterative_steps,
            ignored_layers=ignored,
            unwrapped_parameters=unwrapped,
            round_to=self.round_to or None,
            forward_fn=_trace_forward,
        )
        steps: list[dict[str, Any]] = []
        for k in range(self.iterative_steps):
            out.eval()
            pruner.step()
            entry: dict[str, Any] = {"step": k + 1, "n_params": out.n_params()}
            if fit is not None:
                fit(out, steps=self.finetune_steps, lr=self.lr or None, seed=ctx.seed + k)
                if ctx.evaluate is not None:
                    entry["valid"] = ctx.evaluate(out)
            steps.append(entry)
        out.eval()
        history = [
            [name, bool(is_out), [int(i) for i in idxs]]
            for name, is_out, idxs in pruner.pruning_history()
        ]
        widths = block_widths(out)
        after = {"n_params": out.n_params(), "macs_per_second": macs_per_second(out)}
        stats = {
            "before": before,
            "after": after,
            "params_ratio": after["n_params"] / before["n_params"],
            "macs_ratio": after["macs_per_second"] / before["macs_per_second"],
            "channels_removed": 1 - sum(widths) / sum(widths_before),
            "block_widths": widths,
            "steps": steps,
        }
        return PassResult(out, {"history": history}, stats)


@register_replayer("prune-structured")
def replay_structured(model: Separator, record: dict[str, Any]) -> Separator:
    """Replay a structured-pruning record: the same channels removed, the same shapes."""
    was_training = model.training
    model.eval()
    _, unwrapped = graph_spec(model)
    graph = (
        _tp()
        .DependencyGraph()
        .build_dependency(
            model,
            example_inputs=_example(model),
            forward_fn=_trace_forward,
            unwrapped_parameters=unwrapped,
        )
    )
    graph.load_pruning_history([(n, bool(o), list(i)) for n, o, i in record["history"]])
    return model.train(was_training)
