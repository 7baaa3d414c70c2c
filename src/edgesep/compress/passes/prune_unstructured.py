"""Unstructured magnitude pruning: zero the smallest weights, per layer or globally.

A target ``ratio`` (or an absolute ``threshold`` on |w|) over the layers' weight tensors,
``scope="layer"`` (each tensor its own ratio) or ``"global"`` (one magnitude threshold across
all). ``iterative_steps`` > 1 follows a schedule prune -> fine-tune -> prune with cubic ratio
growth (Zhu & Gupta): the masks are re-applied after every optimiser step of each fine-tune.
Masks are kept here rather than with ``torch.nn.utils.prune`` because the TCN's training-mode
depthwise conv reads ``conv.weight`` directly, which that module's forward pre-hook would not
refresh. Values only change, so the record needs no replay; stats report the real sparsity of
every tensor measured afterwards.

References: Han et al., "Learning both Weights and Connections for Efficient Neural Networks",
NeurIPS 2015; Zhu & Gupta, "To prune, or not to prune", 2017.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from edgesep.compress.base import PASSES, PassContext, PassResult, clone
from edgesep.compress.passes.sensitivity import magnitude_mask
from edgesep.errors import InputError
from edgesep.models.base import Separator


def is_weight(name: str, p: torch.Tensor) -> bool:
    """A layer's weight matrix/kernel (conv, linear, recurrent), not a norm's gain or a bias."""
    return p.dim() >= 2 and name.rsplit(".", 1)[-1].startswith("weight")


def weight_tensors(model: Separator) -> dict[str, torch.nn.Parameter]:
    """The prunable weights (see :func:`is_weight`)."""
    return {n: p for n, p in model.named_parameters() if is_weight(n, p)}


def sparsity_report(model: Separator) -> dict[str, Any]:
    """Real fraction of zeros per weight tensor and over all of them."""
    weights = weight_tensors(model)
    per = {n: float((p == 0).float().mean()) for n, p in weights.items()}
    total = sum(p.numel() for p in weights.values())
    zeros = sum(int((p == 0).sum()) for p in weights.values())
    return {"per_tensor": per, "global": zeros / max(1, total)}


def masks_for(
    weights: dict[str, torch.nn.Parameter], ratio: float, scope: str, threshold: float
) -> dict[str, torch.Tensor]:
    if threshold > 0:
        return {n: p.detach().abs() > threshold for n, p in weights.items()}
    if scope == "layer":
        return {n: magnitude_mask(p, ratio) for n, p in weights.items()}
    flat = torch.cat([p.detach().abs().flatten() for p in weights.values()])
    cut = magnitude_mask(flat, ratio)
    kept_min = flat[cut].min() if bool(cut.any()) else flat.max() + 1
    return {n: p.detach().abs() >= kept_min for n, p in weights.items()}


@PASSES.register("prune-unstructured")
@dataclass(frozen=True)
class UnstructuredPrune:
    """Zero ``ratio`` of the weights by magnitude; see the module docstring."""

    ratio: float = 0.5
    scope: str = "global"  # global | layer
    threshold: float = 0.0  # > 0: prune |w| <= threshold instead of a ratio
    iterative_steps: int = 1
    finetune_steps: int = 0  # per step
    lr: float = 0.0

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        if self.scope not in ("global", "layer"):
            raise InputError(
                f"prune-unstructured: scope must be global or layer, not {self.scope!r}"
            )
        if not 0.0 <= self.ratio < 1.0:
            raise InputError(f"prune-unstructured: ratio must be in [0, 1), got {self.ratio}")
        fit = ctx.require_fit("prune-unstructured") if self.finetune_steps > 0 else None
        out = clone(model).eval()
        schedule = []
        for k in range(1, self.iterative_steps + 1):
            # cubic schedule: most pruning early, while the weights can still adapt
            ratio = self.ratio * (1 - (1 - k / self.iterative_steps) ** 3)
            weights = weight_tensors(out)
            masks = masks_for(weights, ratio, self.scope, self.threshold)
            with torch.no_grad():
                for n, p in weights.items():
                    p.mul_(masks[n])
            entry: dict[str, Any] = {"step": k, "target": ratio}
            if fit is not None:

                def reapply(
                    m: Separator, step: int, masks: dict[str, torch.Tensor] = masks
                ) -> None:
                    with torch.no_grad():
                        for n, p in weight_tensors(m).items():
                            p.mul_(masks[n])

                fit(
                    out,
                    steps=self.finetune_steps,
                    lr=self.lr or None,
                    on_step=reapply,
                    seed=ctx.seed + k,
                )
                reapply(out, 0)
                if ctx.evaluate is not None:
                    entry["valid"] = ctx.evaluate(out)
            entry["sparsity"] = sparsity_report(out)["global"]
            schedule.append(entry)
        report = sparsity_report(out)
        stats = {
            "sparsity": report["global"],
            "per_tensor": report["per_tensor"],
            "schedule": schedule,
        }
        return PassResult(out.eval(), {}, stats)
