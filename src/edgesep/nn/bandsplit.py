"""Band split and band-wise mask estimation of Band-Split RNN, and complex masking.

A one-sided spectrum of F = n_fft // 2 + 1 bins is cut into contiguous bands: narrow at low
frequencies, where speech and music carry most of their structure, and wide above. Each band gets
its own normalisation and projection to a shared feature size D, so that the bands can then be
modelled as a sequence; each band's features later get their own head that produces that band's
complex masks. Real and imaginary parts are separate tensors (no complex dtype), so everything
exports to ONNX, and every operation acts on one frame at a time, so it is causal.

References: Luo & Yu, "Music Source Separation with Band-Split RNN", IEEE/ACM TASLP 31, 2023
(arXiv 2209.15174).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from edgesep.errors import InputError


def check_band_widths(widths: Sequence[int], n_freq: int) -> tuple[int, ...]:
    """``widths`` as a tuple after checking that they tile ``n_freq`` bins exactly."""
    out = tuple(widths)
    if not out or any(not isinstance(w, int) or w < 1 for w in out):
        raise InputError(f"band widths must be positive numbers of bins, got {out}")
    if sum(out) != n_freq:
        raise InputError(
            f"band widths must tile the {n_freq} frequency bins (n_fft // 2 + 1) exactly; "
            f"{len(out)} bands of {out} cover {sum(out)}"
        )
    return out


def band_widths_from_hz(
    sample_rate: int, n_fft: int, splits: Sequence[tuple[float, float]]
) -> tuple[int, ...]:
    """Band widths in bins from ``(upper_edge_hz, band_width_hz)`` pairs, lowest first.

    Bands ``band_width_hz`` wide fill the range from the previous upper edge (0 Hz for the first
    pair) up to ``upper_edge_hz``; everything above the last upper edge is one band. Edges are
    rounded to the nearest bin and bands that round to nothing are dropped, so the result always
    tiles the n_fft // 2 + 1 bins; the DC bin joins the first band, the Nyquist bin the last.
    """
    n_freq = n_fft // 2 + 1
    bin_hz = sample_rate / n_fft
    lower = 0.0
    interior: set[int] = set()
    for upper, width in splits:
        if width <= 0 or upper <= lower:
            raise InputError(
                f"band splits must be (upper edge, width) pairs with increasing upper edges and "
                f"positive widths; got ({upper}, {width}) after upper edge {lower}"
            )
        n_bands = max(1, round((upper - lower) / width))
        for i in range(1, n_bands + 1):
            interior.add(round((lower + (upper - lower) * i / n_bands) / bin_hz))
        lower = upper
    # a band of the Nyquist bin alone carries almost nothing; it joins its neighbour
    edges = [0, *sorted(e for e in interior if 0 < e < n_freq - 1), n_freq]
    return tuple(hi - lo for lo, hi in pairwise(edges))


def apply_complex_mask(
    mask_re: torch.Tensor, mask_im: torch.Tensor, spec_re: torch.Tensor, spec_im: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The complex product mask * spectrum on separate real and imaginary parts.

    Shape: masks (B, S, F, N), spectrum (B, F, N) -> real, imag (B, S, F, N).
    """
    x_re, x_im = spec_re.unsqueeze(1), spec_im.unsqueeze(1)
    return mask_re * x_re - mask_im * x_im, mask_re * x_im + mask_im * x_re


class BandSplit(nn.Module):
    """Per band: LayerNorm over its 2 * width real/imaginary values, then a projection to D.

    The norm is per frame (not over time), so the split is causal; it also makes each band's
    features independent of the band's level, which the masks then carry back.

    Shape: real, imag (B, F, N) -> (B, K, N, D) for K bands.
    """

    def __init__(self, widths: Sequence[int], dim: int) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.bands = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(2 * w), nn.Linear(2 * w, dim)) for w in self.widths
        )

    def forward(self, spec_re: torch.Tensor, spec_im: torch.Tensor) -> torch.Tensor:
        x_re, x_im = spec_re.transpose(1, 2), spec_im.transpose(1, 2)  # (B, N, F)
        feats, lo = [], 0
        for width, band in zip(self.widths, self.bands, strict=True):
            hi = lo + width
            feats.append(band(torch.cat([x_re[..., lo:hi], x_im[..., lo:hi]], dim=-1)))
            lo = hi
        return torch.stack(feats, dim=1)


class BandMaskEstimator(nn.Module):
    """Per band: LayerNorm, Linear-Tanh-Linear and a GLU giving every source's complex mask.

    Shape: (B, K, N, D) -> mask real, imag (B, S, F, N).
    """

    def __init__(self, widths: Sequence[int], dim: int, hidden: int, n_src: int) -> None:
        super().__init__()
        self.widths, self.n_src = tuple(widths), n_src
        self.bands = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(dim),
                nn.Linear(dim, hidden),
                nn.Tanh(),
                # (S, real/imag, width) values, doubled for the GLU's gates
                nn.Linear(hidden, 2 * n_src * 2 * w),
                nn.GLU(dim=-1),
            )
            for w in self.widths
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        masks = [
            band(z[:, k]).unflatten(-1, (self.n_src, 2, width))
            for k, (width, band) in enumerate(zip(self.widths, self.bands, strict=True))
        ]
        m = torch.cat(masks, dim=-1).permute(0, 2, 3, 4, 1)  # (B, S, 2, F, N)
        return m[:, :, 0], m[:, :, 1]
