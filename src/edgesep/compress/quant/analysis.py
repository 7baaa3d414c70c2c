"""Quantization noise vs separation quality: closed-form SQNR, the combination rule, and a
measured-vs-predicted sweep over bit widths and tensor groups.

A b-bit uniform quantizer over [-A, A] has step 2A / 2^b and, for a busy signal, noise power
step^2 / 12, so a signal of RMS r has SQNR = 10 log10(3 * 4^b) - 20 log10(A / r)
= 6.02 b + 4.77 - CF dB, CF the crest factor (peak over RMS) in dB: a full-scale sine
(CF 3.01 dB) gets the textbook 6.02 b + 1.76 dB; speech, whose crest factor is 15-20 dB,
much less, and a per-tensor scale set by the loudest calibration clip less still for quiet
clips. Model error and quantization noise are uncorrelated, so their powers add: the
quantized SI-SNR is ``1 / SNR_total = 1 / SNR_model + 1 / SQNR`` in linear power
(:func:`combine_snr_db`). Quantization noise thus costs little while SQNR exceeds the model's
SI-SNR by 10 dB or more, and caps the SI-SNR of the best models.

:func:`analyze` quantizes one tensor group at a time (input, output, activations, weights)
at each bit width, measures the mean SI-SNR on given mixtures, and predicts it: for the input
and output signals from the closed form with the calibrated step (noise s^2 / 12 against each
clip's power), for activations and weights from the combination rule with the measured
float-vs-quantized output SNR.

References: Widrow & Kollar, "Quantization Noise", Cambridge 2008 (the s^2/12 model);
Cohen et al., "Fully Quantized Neural Networks for Audio Source Separation", IEEE OJSP 2024
(SDR under quantization noise); Le Roux et al., "SDR - half-baked or well done?", 2019.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from edgesep.compress.quant.calibrate import calibrate
from edgesep.compress.quant.insert import (
    GROUPS,
    QuantSpec,
    activation_quantizers,
    attach,
    find_sites,
)
from edgesep.metrics.pit import best_permutation
from edgesep.metrics.sisnr import si_snr
from edgesep.models.base import Separator


def sqnr_sine_db(bits: int) -> float:
    """Closed-form SQNR of a full-scale sine under b-bit uniform quantization (6.02 b + 1.76)."""
    return 20 * bits * math.log10(2) + 10 * math.log10(1.5)


def crest_factor_db(x: np.ndarray | torch.Tensor, peak: float | None = None) -> float:
    """Peak (or the given full-scale ``peak``) over RMS, in dB."""
    arr = np.asarray(x, dtype=np.float64)
    rms = math.sqrt(float(np.mean(arr**2)))
    top = float(np.max(np.abs(arr))) if peak is None else peak
    return 20 * math.log10(top / max(rms, 1e-30))


def sqnr_db(bits: int, crest_db: float) -> float:
    """Predicted SQNR of a signal of crest factor ``crest_db`` quantized over [-peak, peak]."""
    return 20 * bits * math.log10(2) + 10 * math.log10(3) - crest_db


def measured_sqnr_db(x: np.ndarray, bits: int, peak: float | None = None) -> float:
    """SQNR of ``x`` rounded to 2^b levels spanning [-peak, peak] (default: its own peak)."""
    arr = np.asarray(x, dtype=np.float64)
    top = float(np.max(np.abs(arr))) if peak is None else peak
    step = 2 * top / (2**bits - 1)
    q = np.clip(np.round((arr + top) / step), 0, 2**bits - 1) * step - top
    return 10 * math.log10(float(np.sum(arr**2)) / max(float(np.sum((arr - q) ** 2)), 1e-300))


def combine_snr_db(*snrs_db: float) -> float:
    """SNR of a signal carrying independent errors of the given SNRs: 1/SNR = sum 1/SNR_i."""
    return -10 * math.log10(sum(10 ** (-s / 10) for s in snrs_db))


def _si_snr_per_clip(model: Separator, items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """Per clip: best-permutation SI-SNR (dB), the estimates (S, T) matched to the references."""
    out = []
    with torch.no_grad():
        for mix, ref in items:
            est = model(mix[None, None])[:, :, 0]
            perm, best = best_permutation(est, ref[None], si_snr)
            out.append((float(best[0]), est[0, perm[0]]))
    return out


def analyze(
    model: Separator,
    items: Sequence[tuple[torch.Tensor, torch.Tensor]],
    calibration: Callable[[], Iterator[torch.Tensor]],
    bits: Sequence[int] = (4, 6, 8, 10, 12),
    groups: Sequence[str] = GROUPS,
) -> dict[str, Any]:
    """Measured vs predicted mean SI-SNR (dB) with one tensor group quantized at a time.

    ``items``: (mix (T,), sources (S, T)) pairs. Returns ``{"float": x, "rows": [{"group",
    "bits", "measured", "predicted", "output_snr"}...]}``; ``output_snr`` is the mean SNR of
    the quantized model's output against the float model's.
    """
    model = model.eval()
    float_clips = _si_snr_per_clip(model, items)
    float_db = [s for s, _ in float_clips]
    sites = find_sites(model)
    rows = []
    for group in groups:
        for b in bits:
            spec = QuantSpec(b, b, b, b, groups=(group,))
            q = attach(copy.deepcopy(model), spec, sites)
            calibrate(q, calibration)
            clips = _si_snr_per_clip(q.eval(), items)
            measured = float(np.mean([s for s, _ in clips]))
            out_snr = [
                10 * math.log10(float(fe.pow(2).sum()) / max(float((fe - qe).pow(2).sum()), 1e-30))
                for (_, fe), (_, qe) in zip(float_clips, clips, strict=True)
            ]
            predicted = [combine_snr_db(f, snr) for f, snr in zip(float_db, out_snr, strict=True)]
            quants = activation_quantizers(q)
            if group in ("input", "output"):
                name = "input_quant" if group == "input" else "output_quant"
                noise = float(quants[name].scale.detach()[0]) ** 2 / 12
                predicted = []
                for (mix, _), (f, est) in zip(items, float_clips, strict=True):
                    power = (
                        float(mix.pow(2).mean()) if group == "input" else float(est.pow(2).mean())
                    )
                    snr = 10 * math.log10(max(power, 1e-30) / noise)
                    predicted.append(combine_snr_db(f, snr))
            rows.append(
                {
                    "group": group,
                    "bits": b,
                    "measured": measured,
                    "predicted": float(np.mean(predicted)),
                    "output_snr": float(np.mean(out_snr)),
                }
            )
    return {"float": float(np.mean(float_db)), "rows": rows, "n_items": len(items)}


def plot(result: dict[str, Any], path: Any, title: str = "") -> None:
    """Measured (solid) and predicted (dashed) SI-SNR vs bits, one colour per group; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgesep.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, group in enumerate(dict.fromkeys(r["group"] for r in result["rows"])):
        rows = [r for r in result["rows"] if r["group"] == group]
        bits = [r["bits"] for r in rows]
        color = f"C{i}"
        ax.plot(bits, [r["measured"] for r in rows], "o-", color=color, label=f"{group}")
        ax.plot(bits, [r["predicted"] for r in rows], "x--", color=color)
    ax.axhline(result["float"], color="k", lw=0.8, label="float")
    ax.set_xlabel("bits (this group only quantized)")
    ax.set_ylabel("mean SI-SNR (dB)")
    ax.set_title(title or "measured (solid) vs predicted (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
