"""Clustering-based weight quantization: per-tensor k-means codebooks of 2^b shared values.

Every layer weight (conv/linear/recurrent kernels of at least ``min_numel`` values) is replaced
by its k-means clustering (1-D k-means on the values with SciPy's ``kmeans2``, started from
linearly spaced centroids as Deep Compression recommends and from quantiles, keeping the
lower squared error). Bits are uniform (``bits``) or chosen per
tensor under a global budget (``budget_bits``, mean bits per clustered weight) from a
sensitivity analysis (:func:`edgesep.compress.passes.sensitivity.bit_sensitivity`).
Optional centroid fine-tuning (``finetune_steps``) trains the model with the indices frozen:
after every optimiser step each centroid becomes the mean of its cluster's updated weights.

The result is palettised (:mod:`edgesep.export.palette`): saved, its weights are packed indices
plus codebooks, so the artifact's bytes really shrink; the record's plan lets a fresh model
re-attach the packing before loading (replayer ``cluster``).

References: Han et al., "Deep Compression", ICLR 2016; Tan & Wang, "Towards model compression
for deep learning based speech enhancement", IEEE/ACM TASLP 2021.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from edgesep.compress.base import PASSES, PassContext, PassResult, clone
from edgesep.compress.records import register_replayer
from edgesep.errors import InputError
from edgesep.export.palette import attach_palette, detach_palette, plain_state
from edgesep.models.base import Separator


def kmeans_1d(
    values: torch.Tensor, bits: int, iters: int = 30
) -> tuple[torch.Tensor, torch.Tensor]:
    """(centroids (k,), index of each value (n,)) of a 1-D k-means with k <= 2^bits.

    Two deterministic starts, linear between min and max and at the quantiles; the one with
    the lower squared error wins. Empty clusters are dropped.
    """
    x = values.detach().flatten().double().numpy()
    k = min(2**bits, len(np.unique(x)))
    starts = [np.linspace(x.min(), x.max(), k), np.quantile(x, (np.arange(k) + 0.5) / k)]
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for init in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty cluster: dropped below
            centroids, labels = kmeans2(x[:, None], init[:, None], iter=iters, minit="matrix")
        sse = float(((x - centroids[labels, 0]) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, centroids[:, 0], labels)
    assert best is not None
    used, labels = np.unique(best[2], return_inverse=True)
    return torch.from_numpy(best[1][used]).float(), torch.from_numpy(labels).long()


def clusterable(model: Separator, min_numel: int) -> list[str]:
    """Names of the layer weights a palette clusters (at least ``min_numel`` values)."""
    return [
        n
        for n, p in model.named_parameters()
        if p.dim() >= 2
        and n.rsplit(".", 1)[-1].startswith("weight")
        and p.numel() >= min_numel
        and p.is_floating_point()
    ]


def cluster_tensor(t: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` with every value replaced by its centroid, and the indices. Same shape."""
    centroids, idx = kmeans_1d(t, bits)
    return centroids[idx].view_as(t).to(t.dtype), idx.view(t.shape)


@PASSES.register("cluster")
@dataclass(frozen=True)
class Cluster:
    """k-means weight sharing, packed; see the module docstring."""

    bits: int = 4
    budget_bits: float = 0.0  # > 0: per-tensor bits from the sensitivity analysis
    candidate_bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    min_numel: int = 256
    finetune_steps: int = 0
    lr: float = 0.0
    raw_fp16: bool = False  # the unclustered tensors (biases, norms) stored as float16
    raw_bits: int = 0  # > 0: the unclustered tensors share one k-means codebook of 2^raw_bits

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        if not 1 <= self.bits <= 8:
            raise InputError(f"cluster: bits must be in 1..8, got {self.bits}")
        out = clone(model).eval()
        detach_palette(out)
        names = clusterable(out, self.min_numel)
        params = dict(out.named_parameters())
        plan = {n: self.bits for n in names}
        sensitivity: dict[str, Any] = {}
        if self.budget_bits > 0:
            from edgesep.compress.passes.sensitivity import bit_sensitivity, choose_bits

            table = bit_sensitivity(out, names, self.candidate_bits, ctx)
            numels = {n: params[n].numel() for n in names}
            plan = choose_bits(table, numels, self.budget_bits)
            sensitivity = {"drop_db": table}
        indices: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for n in names:
                values, indices[n] = cluster_tensor(params[n], plan[n])
                params[n].copy_(values)
        raw_names = [
            k for k, v in plain_state(out).items() if v.is_floating_point() and k not in plan
        ]
        if self.raw_bits:
            self._cluster_jointly(out, raw_names)
        if self.finetune_steps > 0:
            fit = ctx.require_fit("cluster")

            def tie(m: Separator, step: int) -> None:
                own = dict(m.named_parameters())
                with torch.no_grad():
                    for n, idx in indices.items():
                        p, flat = own[n], idx.flatten()
                        k = int(flat.max()) + 1
                        sums = torch.zeros(k).index_add_(0, flat, p.detach().flatten())
                        counts = torch.bincount(flat, minlength=k).clamp(min=1)
                        p.copy_((sums / counts)[flat].view_as(p))

            fit(out, steps=self.finetune_steps, lr=self.lr or None, on_step=tie, seed=ctx.seed)
            tie(out, 0)  # the restored best weights are tied too
            if self.raw_bits:
                self._cluster_jointly(out, raw_names)
        out.eval()
        attach_palette(out, plan, self.raw_fp16, self.raw_bits)
        n_clustered = sum(params[n].numel() for n in names)
        n_float = sum(v.numel() for v in plain_state(out).values() if v.is_floating_point())
        stats = {
            "n_tensors": len(names),
            "clustered_fraction": n_clustered / max(1, n_float),
            "mean_bits": sum(plan[n] * params[n].numel() for n in names) / max(1, n_clustered),
            "bits": plan,
            "distinct_values": {n: int(torch.unique(params[n]).numel()) for n in names},
            **sensitivity,
        }
        record = {"plan": plan, "raw_fp16": self.raw_fp16, "raw_bits": self.raw_bits}
        return PassResult(out, record, stats)

    def _cluster_jointly(self, model: Separator, names: list[str]) -> None:
        """Cluster the tensors ``names`` together on one codebook of 2^raw_bits values."""
        state = plain_state(model)
        flat = torch.cat([state[n].detach().flatten() for n in names])
        values, _ = cluster_tensor(flat, self.raw_bits)
        offset = 0
        with torch.no_grad():
            for n in names:
                t = state[n]
                t.copy_(values[offset : offset + t.numel()].view_as(t))
                offset += t.numel()


@register_replayer("cluster")
def replay_cluster(model: Separator, record: dict[str, Any]) -> Separator:
    """Re-attach the packing (armed once the packed weights are loaded)."""
    plan = {str(k): int(v) for k, v in record["plan"].items()}
    raw_fp16, raw_bits = bool(record.get("raw_fp16", False)), int(record.get("raw_bits", 0))
    attach_palette(model, plan, raw_fp16, raw_bits, armed=False)
    return model
