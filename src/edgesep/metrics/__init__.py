"""Separation quality metrics: pure functions of estimates and references.

SI-SNR(i) in torch (differentiable, the training objective), BSS Eval SDR(i)/SIR/SAR for torch
or numpy, and permutation-invariant matching (uPIT).
"""

from edgesep.metrics.pit import best_permutation, pit_si_snr_loss, reorder
from edgesep.metrics.sdr import BSSEval, bss_eval, sdr, sdri
from edgesep.metrics.sisnr import si_snr, si_snr_np, si_snri

__all__ = [
    "BSSEval",
    "best_permutation",
    "bss_eval",
    "pit_si_snr_loss",
    "reorder",
    "sdr",
    "sdri",
    "si_snr",
    "si_snr_np",
    "si_snri",
]
