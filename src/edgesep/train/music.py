"""Music demixing pieces of the training loop: a fixed-order loss per named stem, validation.

Music stems have names (vocals, drums, bass, other), so there is no permutation to solve: estimate
``k`` is scored against stem ``k``. The loss is a negative SDR with a soft threshold tied to the
mixture's energy, so a stem that is silent in a segment (no vocals in an intro) gives a bounded
loss instead of an infinite one: an estimate within ``threshold_db`` of the mixture energy below
the stem counts as perfect.

References: Wisdom et al., "Unsupervised Sound Separation Using Mixture Invariant Training",
NeurIPS 2020 (thresholded SNR loss); Mitsufuji et al., "Music Demixing Challenge 2021", 2022
(uSDR, the validation score).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgesep.data.datasets.musdb import MusdbDataset
from edgesep.errors import InputError
from edgesep.metrics.music import usdr
from edgesep.models.base import Separator

MusicValidationSets = dict[str, list[tuple[torch.Tensor, torch.Tensor]]]


def thresholded_sdr_loss(
    est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor, threshold_db: float = 30.0
) -> torch.Tensor:
    """Mean over batch and stems of ``-10 log10(|s|^2 / (|s - s_hat|^2 + tau |x|^2))``.

    ``tau = 10^(-threshold_db / 10)``; energies are summed over channels and samples.

    Shape: est, ref (B, S, C, T), mix (B, C, T) -> scalar
    """
    if est.shape != ref.shape:
        raise InputError(f"estimate {tuple(est.shape)} and stems {tuple(ref.shape)} differ")
    tau = 10 ** (-threshold_db / 10)
    eps = 1e-8
    err = (ref - est).pow(2).sum(dim=(-2, -1))  # (B, S)
    energy = ref.pow(2).sum(dim=(-2, -1))
    floor = tau * mix.pow(2).sum(dim=(-2, -1))[:, None]
    sdr = 10 * torch.log10((energy + eps) / (err + floor + eps))
    return -sdr.mean()


def load_music_validation(
    dirs: tuple[str, ...], max_items: int, seconds: float
) -> MusicValidationSets:
    """(mix (C, T), stems (S, C, T)) of each validation song, the middle ``seconds`` of it."""
    sets: MusicValidationSets = {}
    for d in dirs:
        ds = MusdbDataset(d, split="valid", max_items=max_items or None)
        items = []
        for i in range(len(ds)):
            it = ds[i]
            n = it["mix"].shape[-1]
            keep = min(n, round(seconds * it["sample_rate"])) if seconds > 0 else n
            a = (n - keep) // 2
            items.append(
                (
                    torch.from_numpy(np.ascontiguousarray(it["mix"][..., a : a + keep])),
                    torch.from_numpy(np.ascontiguousarray(it["sources"][..., a : a + keep])),
                )
            )
        sets[Path(d).name] = items
    return sets


@torch.no_grad()
def validate_music(
    model: Separator, sets: MusicValidationSets, device: torch.device
) -> dict[str, float]:
    """Mean uSDR (dB) over songs and stems per validation set, per stem and over all."""
    model.eval()
    out: dict[str, float] = {}
    per_stem: list[np.ndarray] = []
    for name, items in sets.items():
        scores = []
        for mix, ref in items:
            est = model(mix.to(device)[None])[0].cpu().numpy()
            scores.append(usdr(est, ref.numpy()))
        out[name] = float(np.mean(scores))
        per_stem += scores
    stems = np.mean(per_stem, axis=0)
    names = model.source_names or tuple(f"s{k + 1}" for k in range(len(stems)))
    out.update({f"usdr_{n}": float(v) for n, v in zip(names, stems, strict=True)})
    out["mean"] = float(np.mean(per_stem))
    model.train()
    return out
