"""Knowledge distillation: fine-tune (or train from scratch) a student against a teacher.

The loss is ``(1 - alpha) * task_loss + alpha * distill_loss`` (:class:`DistillLoss`): the
student's time-domain outputs are pulled towards the teacher's, and with ``mask_weight`` > 0
its masks too. The teacher is ``ctx.teacher`` (a pipeline sets it to its input model, e.g. the
unpruned one). With ``student`` set (a registered config name, e.g. a narrower Conv-TasNet) a
fresh student of that config is built (seeded) and trained instead of the input model; the
result then has the student's config. Teacher outputs are cached per batch. Needs ``ctx.fit``.

References: Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; Tan & Wang,
"Towards model compression for deep learning based speech enhancement", TASLP 2021.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from edgesep.compress.base import PASSES, PassContext, PassResult, clone
from edgesep.compress.losses import DistillLoss
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build


@PASSES.register("distill")
@dataclass(frozen=True)
class Distill:
    """Train the input model (or a fresh ``student``) from ``ctx.teacher``."""

    steps: int = 300
    alpha: float = 0.5
    mask_weight: float = 0.0
    lr: float = 0.0
    student: str = ""  # a config name: train a fresh model of it instead of the input
    student_overrides: dict[str, Any] = field(default_factory=dict)
    cache_size: int = 512

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        fit = ctx.require_fit("distill")
        teacher = clone(ctx.teacher if ctx.teacher is not None else model).eval()
        if self.student:
            torch.manual_seed(ctx.seed)
            out = build(self.student, **self.student_overrides)
        else:
            out = clone(model)
        loss = DistillLoss(teacher, self.alpha, self.mask_weight, self.cache_size)
        fit(out, steps=self.steps, loss=loss, lr=self.lr or None, seed=ctx.seed)
        stats: dict[str, Any] = {"n_params": out.n_params(), "teacher_params": teacher.n_params()}
        if ctx.evaluate is not None:
            stats["valid"] = ctx.evaluate(out)
        return PassResult(out.eval(), {"fresh_model": bool(self.student)}, stats)
