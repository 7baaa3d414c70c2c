"""Per-tensor sensitivity: quality drop vs prune ratio and vs weight bits, and budgeted choices.

Each weight tensor is perturbed alone (magnitude-pruned to a ratio, or k-means clustered to b
bits) and the model scored. Two scores: ``metric="output"`` (default, cheap, no labels): the
*output drop* ``10 log10(1 + nsr)`` dB on calibration mixtures, where ``nsr`` is the power of
the output change over the power of the unperturbed model's output (0 dB: no change; small
drops add up over tensors); ``metric="valid"``: the drop in validation SI-SNRi (dB) from
``ctx.evaluate``.
:func:`choose_bits` / :func:`choose_ratios` then pick per-tensor settings greedily under a global
budget (mean bits per weight / overall sparsity), lowest added drop per saved bit first. The
pass writes the tables to its stats and a plot to ``ctx.work_dir/sensitivity.png``.

References: Tan & Wang, "Towards model compression for deep learning based speech enhancement",
IEEE/ACM TASLP 2021 (per-layer sensitivity analysis); Han et al., "Learning both Weights and
Connections for Efficient Neural Networks", NeurIPS 2015.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from edgesep.compress.base import PASSES, PassContext, PassResult, clone
from edgesep.compress.passes.cluster import cluster_tensor, clusterable
from edgesep.errors import InputError
from edgesep.models.base import Separator

Scorer = Callable[[Separator], float]


def magnitude_mask(t: torch.Tensor, ratio: float) -> torch.Tensor:
    """Boolean mask keeping the ``1 - ratio`` largest-magnitude values of ``t``."""
    n_drop = round(ratio * t.numel())
    if n_drop <= 0:
        return torch.ones_like(t, dtype=torch.bool)
    threshold = t.detach().abs().flatten().kthvalue(n_drop).values
    return t.detach().abs() > threshold


def make_scorer(model: Separator, ctx: PassContext, metric: str) -> Scorer:
    """A function model -> drop (dB) relative to ``model`` (see the module docstring)."""
    if metric == "valid":
        evaluate = ctx.require_evaluate("sensitivity")
        base = evaluate(model)["mean"]
        return lambda m: base - evaluate(m)["mean"]
    if metric != "output":
        raise InputError(f"sensitivity: unknown metric {metric!r}; choose output or valid")
    if ctx.calibration is None:
        raise InputError("sensitivity: metric 'output' needs calibration mixtures in the context")
    mixes = list(ctx.calibration())
    with torch.no_grad():
        refs = [model.eval()(x) for x in mixes]
    power = sum(float((r**2).sum()) for r in refs)

    def score(m: Separator) -> float:
        with torch.no_grad():
            noise = sum(
                float(((m.eval()(x) - r) ** 2).sum()) for x, r in zip(mixes, refs, strict=True)
            )
        return 10 * math.log10(1 + noise / max(power, 1e-12))

    return score


def _perturbed(
    model: Separator,
    names: list[str],
    settings: tuple[Any, ...],
    apply: Callable[..., Any],
    score: Scorer,
) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    params = dict(model.named_parameters())
    for name in names:
        p = params[name]
        saved = p.detach().clone()
        table[name] = {}
        for s in settings:
            with torch.no_grad():
                p.copy_(apply(saved, s))
            table[name][str(s)] = score(model)
        with torch.no_grad():
            p.copy_(saved)
    return table


def bit_sensitivity(
    model: Separator,
    names: list[str],
    bits: tuple[int, ...],
    ctx: PassContext,
    metric: str = "output",
) -> dict[str, dict[str, float]]:
    """{tensor: {bits: drop dB}} with each tensor clustered alone (model restored after)."""
    score = make_scorer(model, ctx, metric)
    return _perturbed(model, names, bits, lambda t, b: cluster_tensor(t, b)[0], score)


def prune_sensitivity(
    model: Separator,
    names: list[str],
    ratios: tuple[float, ...],
    ctx: PassContext,
    metric: str = "output",
) -> dict[str, dict[str, float]]:
    """{tensor: {ratio: drop dB}} with each tensor magnitude-pruned alone."""
    score = make_scorer(model, ctx, metric)
    return _perturbed(model, names, ratios, lambda t, r: t * magnitude_mask(t, r), score)


def choose_bits(
    table: dict[str, dict[str, float]], numels: dict[str, int], budget: float
) -> dict[str, int]:
    """Per-tensor bits with mean bits per weight <= ``budget``: start at the most bits, then
    lower the tensor whose next step costs the least added drop per bit-weight saved."""
    options = {n: sorted(int(b) for b in row) for n, row in table.items()}
    chosen = {n: opts[-1] for n, opts in options.items()}
    total = sum(numels.values())

    def mean_bits() -> float:
        return sum(chosen[n] * numels[n] for n in chosen) / max(1, total)

    while mean_bits() > budget + 1e-9:
        best, best_cost = None, math.inf
        for n, opts in options.items():
            i = opts.index(chosen[n])
            if i == 0:
                continue
            lower = opts[i - 1]
            added = table[n][str(lower)] - table[n][str(chosen[n])]
            cost = max(added, 0.0) / ((chosen[n] - lower) * numels[n])
            if cost < best_cost:
                best, best_cost = n, cost
        if best is None:
            break  # every tensor at its fewest bits: the budget cannot be met
        chosen[best] = options[best][options[best].index(chosen[best]) - 1]
    return chosen


def choose_ratios(
    table: dict[str, dict[str, float]], numels: dict[str, int], sparsity: float
) -> dict[str, float]:
    """Per-tensor prune ratios with overall sparsity >= ``sparsity``, cheapest drop first."""
    options = {n: sorted(float(r) for r in row) for n, row in table.items()}
    chosen = {n: 0.0 for n in options}
    total = sum(numels.values())

    def drop(n: str, r: float) -> float:
        return 0.0 if r == 0.0 else table[n][_key(table[n], r)]

    while sum(chosen[n] * numels[n] for n in chosen) / max(1, total) < sparsity - 1e-9:
        best, best_cost = None, math.inf
        for n, opts in options.items():
            higher = [r for r in opts if r > chosen[n]]
            if not higher:
                continue
            r = higher[0]
            cost = max(drop(n, r) - drop(n, chosen[n]), 0.0) / ((r - chosen[n]) * numels[n])
            if cost < best_cost:
                best, best_cost = n, cost
        if best is None:
            break
        chosen[best] = min(r for r in options[best] if r > chosen[best])
    return chosen


def _key(row: dict[str, float], r: float) -> str:
    return next(k for k in row if float(k) == r)


def plot_sensitivity(tables: dict[str, dict[str, dict[str, float]]], path: Any) -> None:
    """One panel per table (prune ratio, bits): drop vs setting, a line per tensor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgesep.atomic import atomic_path

    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4), squeeze=False)
    for ax, (title, table) in zip(axes[0], tables.items(), strict=True):
        for name, row in table.items():
            xs = [float(k) for k in row]
            ax.plot(xs, list(row.values()), alpha=0.5, lw=1, label=name)
        ax.set_title(title)
        ax.set_ylabel("drop (dB)")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


@PASSES.register("sensitivity")
@dataclass(frozen=True)
class Sensitivity:
    """Analysis only: the model is returned unchanged; stats hold the tables and choices."""

    ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    bits: tuple[int, ...] = (2, 3, 4, 6, 8)
    budget_bits: float = 4.0
    budget_sparsity: float = 0.5
    metric: str = "output"
    min_numel: int = 256

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        out = clone(model).eval()
        names = clusterable(out, self.min_numel)
        numels = {n: p.numel() for n, p in out.named_parameters() if n in names}
        prune = prune_sensitivity(out, names, self.ratios, ctx, self.metric)
        bits = bit_sensitivity(out, names, self.bits, ctx, self.metric)
        stats: dict[str, Any] = {
            "metric": self.metric,
            "prune_drop_db": prune,
            "bits_drop_db": bits,
            "chosen_bits": choose_bits(bits, numels, self.budget_bits),
            "chosen_ratios": choose_ratios(prune, numels, self.budget_sparsity),
        }
        if ctx.work_dir is not None:
            path = ctx.work_dir / "sensitivity.png"
            plot_sensitivity({"prune ratio": prune, "bits": bits}, path)
            stats["plot"] = str(path)
        return PassResult(out, {}, stats)
