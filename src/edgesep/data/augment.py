"""Seeded waveform augmentations for training sources: speed/pitch, band-limiting, reverberation.

Each takes an explicit ``numpy.random.Generator``. Synthetic voices alone do not carry over to
real talkers, so sources are varied along the axes real recordings differ in: speaking rate and
pitch, channel bandwidth (telephone-band prompts vs full-band synthesis) and room.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal as sps
import soxr


@dataclass(frozen=True)
class AugmentConfig:
    p_speed: float = 0.5
    speed_range: tuple[float, float] = (0.9, 1.1)  # >1 = faster and higher
    p_bandlimit: float = 0.3
    p_reverb: float = 0.25
    rt60_range: tuple[float, float] = (0.1, 0.5)  # seconds


def speed_perturb(x: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together), by band-limited resampling."""
    return soxr.resample(x, sample_rate * factor, sample_rate, "HQ").astype(np.float32)


def band_filter(
    x: np.ndarray,
    sample_rate: int,
    highpass_hz: float | None = None,
    lowpass_hz: float | None = None,
) -> np.ndarray:
    """A channel of limited bandwidth: 4th-order Butterworth high-pass, then 6th-order low-pass."""
    nyq = sample_rate / 2
    y = x
    if highpass_hz is not None:
        y = sps.sosfilt(sps.butter(4, highpass_hz / nyq, "highpass", output="sos"), y)
    if lowpass_hz is not None:
        y = sps.sosfilt(sps.butter(6, lowpass_hz / nyq, "lowpass", output="sos"), y)
    return np.asarray(y, dtype=np.float32)


def band_limit(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Random telephone-like channel: high-pass at 50-300 Hz and/or low-pass at 45-95 % Nyquist."""
    nyq = sample_rate / 2
    highpass = float(rng.uniform(50, 300)) if rng.random() < 0.7 else None
    lowpass = float(rng.uniform(0.45, 0.95)) * nyq if rng.random() < 0.7 else None
    return band_filter(x, sample_rate, highpass, lowpass)


def synthetic_rir(rt60: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Direct path plus exponentially decaying noise tail reaching -60 dB at ``rt60`` seconds."""
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    pre_delay = int(rng.uniform(0.002, 0.01) * sample_rate)
    tail[: pre_delay + 1] = 0.0
    tail *= rng.uniform(0.2, 0.6) / (np.sqrt(np.sum(tail**2)) + 1e-9)
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    return sps.fftconvolve(x, rir)[: len(x)].astype(np.float32)


def augment(
    x: np.ndarray, rng: np.random.Generator, sample_rate: int, cfg: AugmentConfig
) -> np.ndarray:
    """Apply each augmentation with its probability; the output length may differ (speed)."""
    if rng.random() < cfg.p_speed:
        x = speed_perturb(x, float(rng.uniform(*cfg.speed_range)), sample_rate)
    if rng.random() < cfg.p_bandlimit:
        x = band_limit(x, rng, sample_rate)
    if rng.random() < cfg.p_reverb:
        x = reverberate(x, synthetic_rir(float(rng.uniform(*cfg.rt60_range)), rng, sample_rate))
    return x
