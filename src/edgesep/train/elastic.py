"""Sandwich training of an elastic supernet with in-place distillation (Once-for-All; Yu et al.,
"BigNAS", ECCV 2020).

Every step trains the largest subnet on the ground truth, and the smallest plus ``n_random``
random subnets on a blend of the ground truth and the largest subnet's own (detached) estimates:

    loss = L(largest, ref) + sum_sub [(1 - w) L(sub, ref) + w L(sub, largest.detach())]

with L the uPIT SI-SNR loss and w = ``distill_weight``. All terms share one backward, so one
optimiser step sees the gradients of every subnet. The random subnets of step n are drawn from
a generator seeded by (seed, n): a resumed run draws the same ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from edgesep.errors import InputError
from edgesep.metrics.pit import pit_si_snr_loss
from edgesep.models.base import Separator
from edgesep.models.elastic import ElasticConvTasNet

LossFn = Callable[[Separator, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def sandwich_loss(
    step_of: Callable[[], int],
    seed: int,
    n_random: int = 2,
    distill_weight: float = 0.5,
    snr_cap_db: float = 0.0,
) -> LossFn:
    """A loss for :func:`edgesep.train.loop.train_step`; ``est`` is the largest subnet's."""
    if n_random < 0 or not 0.0 <= distill_weight <= 1.0:
        raise InputError("n_random must be >= 0 and distill_weight in [0, 1]")

    def loss(
        model: Separator, mix: torch.Tensor, ref: torch.Tensor, est: torch.Tensor
    ) -> torch.Tensor:
        model = getattr(model, "module", model)  # under DDP: the wrapped supernet
        if not isinstance(model, ElasticConvTasNet):
            raise TypeError(
                f"sandwich training needs an elastic supernet, got {type(model).__name__}"
            )
        total = pit_si_snr_loss(est, ref, snr_cap_db)
        teacher = est.detach()
        rng = random.Random(seed * 1_000_003 + step_of())
        subnets = [model.smallest_choice(), *(model.random_choice(rng) for _ in range(n_random))]
        for choice in subnets:
            sub = model.forward_subnet(mix, choice)[:, :, 0]
            total = total + (1 - distill_weight) * pit_si_snr_loss(sub, ref, snr_cap_db)
            total = total + distill_weight * pit_si_snr_loss(sub, teacher, snr_cap_db)
        return total / (1 + len(subnets))

    return loss
