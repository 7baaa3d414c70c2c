"""Scale-invariant SNR and its improvement, for torch tensors and numpy arrays.

References: Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019.
"""

from __future__ import annotations

import numpy as np
import torch

EPS = 1e-8


def si_snr(est: torch.Tensor, ref: torch.Tensor, zero_mean: bool = True) -> torch.Tensor:
    """SI-SNR in dB over the last axis; any leading shape, broadcast between the two.

    Shape: (..., T), (..., T) -> (...)
    """
    if zero_mean:
        est = est - est.mean(dim=-1, keepdim=True)
        ref = ref - ref.mean(dim=-1, keepdim=True)
    dot = (est * ref).sum(dim=-1, keepdim=True)
    energy = ref.pow(2).sum(dim=-1, keepdim=True) + EPS
    target = dot / energy * ref
    noise = est - target
    ratio = target.pow(2).sum(dim=-1) / (noise.pow(2).sum(dim=-1) + EPS)
    return 10 * torch.log10(ratio + EPS)


def si_snr_np(est: np.ndarray, ref: np.ndarray, zero_mean: bool = True) -> np.ndarray:
    """numpy version of :func:`si_snr` (float64 internally)."""
    out = si_snr(
        torch.from_numpy(np.asarray(est, dtype=np.float64)),
        torch.from_numpy(np.asarray(ref, dtype=np.float64)),
        zero_mean,
    )
    return out.numpy()


def si_snri(est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """SI-SNR improvement over the unprocessed mixture.

    Shape: est/ref (..., S, T), mix (..., T) -> (..., S)
    """
    return si_snr(est, ref) - si_snr(mix.unsqueeze(-2), ref)
