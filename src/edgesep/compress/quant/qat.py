"""Quantization-aware training: plain QAT and FQSS, as compression passes.

``qat`` starts from the post-training quantized model (:mod:`.ptq`) and fine-tunes it with the
fake quantizers in the graph (weights through the straight-through estimator, scales by LSQ) on
the task loss. ``fqss`` does the same with the FQSS loss (:class:`FQSSLoss`): a distillation
loss towards the float model (``ctx.teacher``, else the pass's input model) whose per-example
weights grow with the example's quantization loss, mixed with the task loss; by default it also
quantizes the output with a residual stage. Both need ``ctx.fit``.

FQSS as implemented here (our reading of the paper and its public code): per example i, the
float and quantized SI-SNRs against the references, d_i = SISNR_float - SISNR_quant (dB,
no gradient), weight w_i = 10^(d_i / 10) normalised to mean 1 over the batch (clipped to
[0.1, 10] first), and loss = (1 - alpha) * task + alpha * mean_i w_i * (-SISNR(est_i,
teacher_i)), both terms uPIT SI-SNR in dB (the authors mix linear SDR ratios).

References: Cohen, Habi, Peretz, Netzer, "Fully Quantized Neural Networks for Audio Source
Separation", IEEE OJSP 2024; Esser et al., "Learned Step Size Quantization", ICLR 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from edgesep.compress.base import PASSES, PassContext, PassResult, clone
from edgesep.compress.losses import task_loss
from edgesep.compress.quant.ptq import QuantParams, quantize_model
from edgesep.errors import InputError
from edgesep.metrics.pit import best_permutation
from edgesep.metrics.sisnr import si_snr
from edgesep.models.base import Separator


def _pit_si_snr_per_example(est: Tensor, ref: Tensor) -> Tensor:
    """Best-permutation SI-SNR (dB) of each example, averaged over sources.

    Shape: (B, S, T), (B, S, T) -> (B,)
    """
    _, best = best_permutation(est, ref, si_snr)
    return best


@dataclass
class FQSSLoss:
    """The FQSS objective (see the module docstring); a :class:`~edgesep.compress.LossFn`."""

    teacher: Separator
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"FQSS alpha must be in [0, 1], got {self.alpha}")
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def weights(self, est: Tensor, teacher_est: Tensor, sources: Tensor) -> Tensor:
        """Per-example weights from the quantization loss in dB. Shape: -> (B,)"""
        with torch.no_grad():
            gap = _pit_si_snr_per_example(teacher_est, sources) - _pit_si_snr_per_example(
                est.detach(), sources
            )
            w = torch.pow(10.0, gap / 10).clamp(0.1, 10.0)
            return w / w.mean()

    def __call__(self, model: Separator, mix: Tensor, sources: Tensor, est: Tensor) -> Tensor:
        with torch.no_grad():
            teacher_est = self.teacher(mix)[:, :, 0]
        w = self.weights(est, teacher_est, sources)
        distill = -(w * _pit_si_snr_per_example(est, teacher_est)).mean()
        return (1 - self.alpha) * task_loss(model, mix, sources, est) + self.alpha * distill


@PASSES.register("qat")
@dataclass(frozen=True)
class QAT(QuantParams):
    """PTQ initialisation, then ``steps`` of fine-tuning on the task loss with fake-quant."""

    steps: int = 300
    lr: float = 1e-4

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        fit = ctx.require_fit("qat")
        out, record, stats = quantize_model(model, self, ctx, "qat")
        out = fit(out, steps=self.steps, lr=self.lr, seed=ctx.seed)
        return PassResult(out.eval(), record, {**stats, "steps": self.steps})


@PASSES.register("fqss")
@dataclass(frozen=True)
class FQSS(QuantParams):
    """PTQ initialisation, then fine-tuning on the FQSS loss; output residual stage on."""

    output_residual: bool = True
    steps: int = 300
    lr: float = 1e-4
    alpha: float = 0.5

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        fit = ctx.require_fit("fqss")
        # a copy: the loss freezes its teacher, which must not touch the caller's model
        teacher = clone(ctx.teacher if ctx.teacher is not None else model)
        out, record, stats = quantize_model(model, self, ctx, "fqss")
        loss = FQSSLoss(teacher, self.alpha)
        out = fit(out, steps=self.steps, loss=loss, lr=self.lr, seed=ctx.seed)
        return PassResult(out.eval(), record, {**stats, "steps": self.steps})
