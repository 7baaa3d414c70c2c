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


def capped_si_snr(est: torch.Tensor, ref: torch.Tensor, cap_db: float) -> torch.Tensor:
    """SI-SNR with a soft ceiling: ``10 log10(|t|^2 / (|e|^2 + tau |t|^2))``, tau = 10^(-cap/10).

    It tends to ``cap_db`` as the error vanishes, so examples already separated well stop
    dominating the gradient and the hard ones get it (Wisdom et al., "Unsupervised sound
    separation using mixture invariant training", NeurIPS 2020: the thresholded SNR loss).

    Shape: (..., T), (..., T) -> (...)
    """
    from edgesep.metrics.sisnr import EPS

    est = est - est.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    target = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + EPS) * ref
    t, e = target.pow(2).sum(-1), (est - target).pow(2).sum(-1)
    return 10 * torch.log10(t / (e + 10 ** (-cap_db / 10) * t + EPS) + EPS)


def pit_si_snr_loss(est: torch.Tensor, ref: torch.Tensor, cap_db: float = 0.0) -> torch.Tensor:
    """Negative uPIT SI-SNR averaged over batch: the Conv-TasNet training objective; with
    ``cap_db`` > 0 the capped SI-SNR of :func:`capped_si_snr`.

    Shape: est, ref (B, S, T) -> scalar
    """
    from edgesep.metrics.sisnr import si_snr

    metric: PairwiseMetric = si_snr if cap_db <= 0 else (lambda e, r: capped_si_snr(e, r, cap_db))
    _, best = best_permutation(est, ref, metric)
    return -best.mean()
