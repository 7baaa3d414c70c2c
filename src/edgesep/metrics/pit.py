"""Utterance-level permutation-invariant training (uPIT) and best-permutation search.

References: Kolbaek et al., "Multitalker speech separation with utterance-level permutation
invariant training of deep recurrent neural networks", IEEE/ACM TASLP 2017.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

PairwiseMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def best_permutation(
    est: torch.Tensor, ref: torch.Tensor, metric: PairwiseMetric
) -> tuple[torch.Tensor, torch.Tensor]:
    """The source order of ``est`` that maximises the mean ``metric`` against ``ref``.

    ``metric(est, ref)`` maps (..., T) pairs to (...). Returns (perm (B, S), best score (B,)),
    where ``est[b, perm[b, j]]`` is matched to ``ref[b, j]``.

    Shape: est, ref (B, S, T)
    """
    n_src = est.shape[1]
    # pairwise[b, i, j] = metric(est_i, ref_j)
    pairwise = metric(est.unsqueeze(2), ref.unsqueeze(1))
    perms = list(itertools.permutations(range(n_src)))
    idx = torch.arange(n_src)
    scores = torch.stack([pairwise[:, list(p), idx].mean(-1) for p in perms], dim=-1)
    best, which = scores.max(dim=-1)
    perm_table = torch.tensor(perms, device=est.device)
    return perm_table[which], best


def reorder(est: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Reorder sources of ``est`` (B, S, ...) by ``perm`` (B, S)."""
    index = perm.view(*perm.shape, *([1] * (est.dim() - 2))).expand_as(est)
    return torch.gather(est, 1, index)


def pit_si_snr_loss(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Negative uPIT SI-SNR averaged over batch: the Conv-TasNet training objective.

    Shape: est, ref (B, S, T) -> scalar
    """
    from edgesep.metrics.sisnr import si_snr

    _, best = best_permutation(est, ref, si_snr)
    return -best.mean()
