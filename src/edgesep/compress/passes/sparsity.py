"""Sparse (group-lasso) regularisation training: drive whole TCN channels to zero.

Fine-tunes with ``task_loss + weight * sum_g sqrt(|g|) ||w_g||_2`` where a group ``g`` is one
hidden channel of one TCN block: every slice structured pruning removes with it (the in_conv
filter and bias, the depthwise filter and bias, both norms' gamma/beta and the residual/skip
convs' input columns). Whole groups shrink together, so the structured pruning that follows
(:mod:`.prune_structured`, ``l2`` importance) removes channels that already carry little.
Values only change (no replay); stats give the group norms before and after.

References: Tan & Wang, "Towards model compression for deep learning based speech enhancement",
IEEE/ACM TASLP 2021; Yuan & Lin, "Model selection and estimation in regression with grouped
variables", JRSS-B 2006; Wen et al., "Learning Structured Sparsity in Deep Neural Networks",
NeurIPS 2016.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from edgesep.compress.base import PASSES, LossFn, PassContext, PassResult, clone
from edgesep.compress.losses import task_loss
from edgesep.compress.passes.prune_structured import tcn_blocks
from edgesep.models.base import Separator


def channel_group_norms(model: Separator) -> list[Tensor]:
    """Per block, the L2 norm of each hidden channel's group (differentiable). Shape: (H_b,)"""
    norms = []
    for b in tcn_blocks(model, "sparsity"):
        parts = [b.in_conv.weight.flatten(1)]
        for conv in (b.in_conv, *b.depthwise_convs()):
            if conv is not b.in_conv:
                parts.append(conv.weight.flatten(1))
            if conv.bias is not None:
                parts.append(conv.bias[:, None])
        for norm in (b.norm1, b.norm2):
            for name in ("gamma", "beta", "weight", "bias"):
                p = getattr(norm, name, None)
                if isinstance(p, Tensor) and p.requires_grad:
                    parts.append(p.reshape(-1)[:, None])
        parts.append(b.res_conv.weight[:, :, 0].t())
        if b.skip_conv is not None:
            parts.append(b.skip_conv.weight[:, :, 0].t())
        g = torch.cat(parts, dim=1)
        norms.append(g.norm(dim=1) * g.shape[1] ** 0.5)
    return norms


def group_lasso(model: Separator) -> Tensor:
    """sum_g sqrt(|g|) ||w_g||_2 over every TCN channel group."""
    return torch.stack([n.sum() for n in channel_group_norms(model)]).sum()


@dataclass
class GroupLassoLoss:
    """``base(model, ...) + weight * group_lasso(model)``, a LossFn."""

    weight: float
    base: LossFn = task_loss

    def __call__(self, model: Separator, mix: Tensor, sources: Tensor, est: Tensor) -> Tensor:
        return self.base(model, mix, sources, est) + self.weight * group_lasso(model)


def _summary(model: Separator, tol: float) -> dict[str, Any]:
    with torch.no_grad():
        norms = torch.cat(channel_group_norms(model))
    rel = norms / norms.max().clamp(min=1e-12)
    return {
        "penalty": float(norms.sum()),
        "median_group_norm": float(norms.median()),
        "groups_below_tol": float((rel < tol).float().mean()),
    }


@PASSES.register("sparsity")
@dataclass(frozen=True)
class GroupSparsity:
    """Group-lasso fine-tuning for ``steps`` steps (needs ``ctx.fit``)."""

    weight: float = 1e-3
    steps: int = 200
    lr: float = 0.0
    tol: float = 0.05  # a group "near zero" below this fraction of the largest group norm

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        fit = ctx.require_fit("sparsity")
        out = clone(model)
        before = _summary(out, self.tol)
        fit(
            out,
            steps=self.steps,
            loss=GroupLassoLoss(self.weight),
            lr=self.lr or None,
            seed=ctx.seed,
        )
        stats: dict[str, Any] = {"before": before, "after": _summary(out, self.tol)}
        if ctx.evaluate is not None:
            stats["valid"] = ctx.evaluate(out)
        return PassResult(out.eval(), {}, stats)
