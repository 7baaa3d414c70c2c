"""Music demixing metrics: BSS Eval v4 (museval, cSDR) and the utterance-level uSDR.

- BSS Eval v4 as SiSEC 2018 reports it: multichannel image SDR with time-invariant 512-tap
  distortion filters over the whole track, evaluated on 1 s frames; a track's score per stem is
  the median over its frames (NaN frames, where the reference is silent, are skipped), and the
  "cSDR" of a data set is the median of those over tracks. Computed by museval itself.
- uSDR as in the Music Demixing / Sound Demixing Challenges: per stem and track,
  ``10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps))`` over all samples and channels,
  ``eps = 1e-7``; a data set's score is the mean over tracks.

museval's package ``__init__`` imports musdb, which imports stempeg, which refuses to import
without ffmpeg on PATH, although the metrics need neither. :func:`museval_metrics` therefore
loads ``museval/metrics.py`` (numpy and scipy only) from the installed museval package by path.

References: Stöter, Liutkus & Ito, "The 2018 Signal Separation Evaluation Campaign", LVA/ICA
2018 (BSS Eval v4, museval); Mitsufuji et al., "Music Demixing Challenge 2021", Frontiers in
Signal Processing 1, 2022 (uSDR); Fabbro et al., "The Sound Demixing Challenge 2023 - Music
Demixing Track", TISMIR 2024.
"""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType

import numpy as np

from edgesep.errors import InputError

USDR_EPS = 1e-7


def usdr(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Utterance-level SDR (dB) of each source over all its channels and samples.

    Shape: est, ref (S, C, T) or (S, T) -> (S,)
    """
    est = np.asarray(est, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if est.shape != ref.shape:
        raise InputError(f"estimate {est.shape} and reference {ref.shape} differ in shape")
    axes = tuple(range(1, ref.ndim))
    num = np.sum(ref**2, axis=axes) + USDR_EPS
    den = np.sum((ref - est) ** 2, axis=axes) + USDR_EPS
    return np.asarray(10 * np.log10(num / den))


@functools.cache
def museval_metrics() -> ModuleType:
    """museval's ``metrics`` module, loaded without the package ``__init__`` (see above)."""
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("BSS Eval v4 needs museval: pip install museval")
    path = f"{next(iter(spec.submodule_search_locations))}/metrics.py"
    mspec = importlib.util.spec_from_file_location("_edgesep_museval_metrics", path)
    if mspec is None or mspec.loader is None:
        raise ImportError(f"{path}: cannot load museval's metrics module")
    module = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    return module


def bss_eval_v4(
    est: np.ndarray, ref: np.ndarray, sample_rate: int, window_seconds: float = 1.0
) -> dict[str, np.ndarray]:
    """Framewise BSS Eval v4 image metrics (SDR, ISR, SIR, SAR) as museval.evaluate computes them.

    Windows and hops are ``window_seconds`` long (museval: 1 s at 44.1 kHz). Frames where a
    reference is silent come back NaN, as in museval.

    Shape: est, ref (S, C, T) -> each (S, n_frames)
    """
    est = np.asarray(est, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if est.shape != ref.shape or ref.ndim != 3:
        raise InputError(f"expected matching (S, C, T) arrays, got {est.shape} and {ref.shape}")
    win = round(window_seconds * sample_rate)
    sdr, isr, sir, sar, _ = museval_metrics().bss_eval(
        np.transpose(ref, (0, 2, 1)),
        np.transpose(est, (0, 2, 1)),
        compute_permutation=False,
        window=win,
        hop=win,
        framewise_filters=False,
        bsseval_sources_version=False,
    )
    return {"sdr": sdr, "isr": isr, "sir": sir, "sar": sar}


def track_sdr_v4(est: np.ndarray, ref: np.ndarray, sample_rate: int) -> np.ndarray:
    """A track's BSS Eval v4 SDR per source: the median over its 1 s frames (NaN skipped).

    A source whose every frame is NaN (silent throughout) scores NaN.

    Shape: est, ref (S, C, T) -> (S,)
    """
    frames = bss_eval_v4(est, ref, sample_rate)["sdr"]
    out = np.full(frames.shape[0], np.nan)
    for k, row in enumerate(frames):
        if not np.isnan(row).all():  # +inf (a bit-exact estimate) is a score, NaN is not
            out[k] = np.nanmedian(row)
    return out


def csdr(track_scores: np.ndarray) -> np.ndarray:
    """cSDR: the median over tracks of the per-track (frame-median) SDR, NaN tracks skipped.

    Shape: (n_tracks, S) -> (S,)
    """
    scores = np.asarray(track_scores, dtype=np.float64)
    out = np.full(scores.shape[1], np.nan)
    for k in range(scores.shape[1]):
        col = scores[:, k]
        if not np.isnan(col).all():
            out[k] = np.nanmedian(col)
    return out
