"""Training losses for compression: the task loss and knowledge-distillation losses.

``task_loss`` is the uPIT SI-SNR objective the models are trained with. :class:`DistillLoss`
mixes it with a distillation term, ``(1 - alpha) * task + alpha * distill``, where the distill
term pulls the student's outputs towards the teacher's (negative SI-SNR against the teacher's
estimates, matched by the best permutation) and, optionally, its masks (MSE, the student's
sources aligned to the teacher's; features of different widths are compared through their
channel means, which works across pruned widths). Teacher outputs can be cached per batch (keyed
by the mixture's bytes), since a fine-tune revisits the same examples epoch after epoch.

References: Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; Kolbaek et al.,
"uPIT", TASLP 2017; Tan & Wang, "Compressing deep neural networks for efficient speech
enhancement", ICASSP 2021.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import Tensor

from edgesep.compress.base import clone
from edgesep.errors import InputError
from edgesep.metrics.pit import best_permutation, pit_si_snr_loss, reorder
from edgesep.metrics.sisnr import si_snr
from edgesep.models.base import Separator


def task_loss(model: Separator, mix: Tensor, sources: Tensor, est: Tensor) -> Tensor:
    """Negative uPIT SI-SNR (dB), the default fine-tuning objective (a :class:`LossFn`).

    Shape: est, sources (B, S, T) -> scalar
    """
    return pit_si_snr_loss(est, sources)


def output_distill_loss(est: Tensor, teacher_est: Tensor) -> Tensor:
    """Negative SI-SNR of the student's sources against the teacher's, best permutation.

    Shape: est, teacher_est (B, S, T) -> scalar
    """
    return pit_si_snr_loss(est, teacher_est.detach())


def feature_distill_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """MSE between intermediate features; of the channel means when the widths differ.

    Shape: (B, C_s, N), (B, C_t, N) -> scalar
    """
    teacher = teacher.detach()
    if student.shape != teacher.shape:
        student, teacher = student.mean(1), teacher.mean(1)
    return torch.mean((student - teacher) ** 2)


def _mask_of(model: Separator, mix: Tensor) -> Tensor | None:
    """The masks of a masking model (Conv-TasNet: ``mask(encoder(x))``), else None."""
    encoder = getattr(model, "encoder", None)
    mask = getattr(model, "mask", None)
    if encoder is None or not callable(mask):
        return None
    x = mix.reshape(-1, 1, mix.shape[-1])
    hop = int(getattr(model, "hop", 1))
    x = torch.nn.functional.pad(x, (0, (-x.shape[-1]) % hop))
    out = mask(encoder(x))
    return out if isinstance(out, Tensor) else None


@dataclass
class DistillLoss:
    """``(1 - alpha) * task_loss + alpha * (output distill + mask_weight * mask distill)``.

    A :class:`~edgesep.compress.base.LossFn`; ``cache_size`` teacher outputs are kept (0: none).
    """

    teacher: Separator
    alpha: float = 0.5
    mask_weight: float = 0.0
    cache_size: int = 512
    _cache: OrderedDict[str, tuple[Tensor, Tensor | None]] = field(
        default_factory=OrderedDict, repr=False
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"distillation alpha must be in [0, 1], got {self.alpha}")
        # a frozen copy: the caller's teacher keeps its mode and trainability (it may be the
        # model a later pass fine-tunes)
        self.teacher = clone(self.teacher).eval().requires_grad_(False)

    def teacher_outputs(self, mix: Tensor) -> tuple[Tensor, Tensor | None]:
        """The teacher's estimates (B, S, T) and masks (or None), cached by content."""
        key = hashlib.sha1(mix.detach().cpu().numpy().tobytes()).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with torch.no_grad():
            est = self.teacher(mix)[:, :, 0]
            masks = _mask_of(self.teacher, mix) if self.mask_weight > 0 else None
        if self.cache_size > 0:
            self._cache[key] = (est, masks)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return est, masks

    def __call__(self, model: Separator, mix: Tensor, sources: Tensor, est: Tensor) -> Tensor:
        t_est, t_masks = self.teacher_outputs(mix)
        task = task_loss(model, mix, sources, est)
        distill = output_distill_loss(est, t_est)
        if self.mask_weight > 0 and t_masks is not None:
            s_masks = _mask_of(model, mix)
            if s_masks is not None:
                # masks are (B, S, N, frames); align the student's sources to the teacher's
                perm, _ = best_permutation(est, t_est, si_snr)
                s_masks = reorder(s_masks, perm)
                distill = distill + self.mask_weight * feature_distill_loss(
                    s_masks.flatten(1, 2), t_masks.flatten(1, 2)
                )
        return (1 - self.alpha) * task + self.alpha * distill
