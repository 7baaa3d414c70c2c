"""Seeded noise for noisy speech mixtures: coloured noise, babble, transients, real recordings.

- ``coloured``: Gaussian noise shaped to a ``1 / f^alpha`` power spectrum (alpha 0 white, 1 pink,
  2 brown, -1 blue), alpha drawn per clip.
- ``babble``: several talkers at once, each an utterance of a different voice (eSpeak NG voices
  of the synthetic speech corpus: use a split whose voices the clean speech does not use),
  each at its own level.
- ``transient``: a quiet pink floor with knocks, clicks and slams: decaying band-passed bursts
  at random times.
- ``real``: a random stretch of a recording from a folder of noise files (looped if short), when
  such recordings are given.

All clips are RMS-normalised to 1; the caller sets the level (an SNR). Everything comes from the
``numpy.random.Generator`` passed in.

References: Wichern et al., "WHAM!: Extending Speech Separation to Noisy Environments",
Interspeech 2019; Kasdin, "Discrete simulation of colored noise and stochastic processes and
1/f^alpha power law noise generation", Proc. IEEE 83(5), 1995 (spectral shaping).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, sosfilt

from edgesep.errors import InputError

NOISE_KINDS: tuple[str, ...] = ("coloured", "babble", "transient", "real")


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (x / rms if rms > 0 else x).astype(np.float64)


def coloured_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Gaussian noise with power spectrum proportional to ``1 / f^alpha`` (DC removed).

    Shape: -> (n,)
    """
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (-alpha / 2)
    spec[0] = 0.0
    return _unit_rms(np.fft.irfft(spec, n))


def _crop_or_loop(rng: np.random.Generator, x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        start = int(rng.integers(len(x) - n + 1))
        return np.asarray(x[start : start + n], dtype=np.float64)
    reps = -(-n // len(x)) + 1
    looped = np.tile(x, reps)
    start = int(rng.integers(len(x)))
    return np.asarray(looped[start : start + n], dtype=np.float64)


def babble(
    rng: np.random.Generator,
    n: int,
    utterances: Sequence[np.ndarray],
    n_talkers: tuple[int, int] = (4, 10),
) -> np.ndarray:
    """The sum of ``n_talkers`` random utterances, each at a level within +-3 dB.

    Shape: -> (n,)
    """
    if len(utterances) < 2:
        raise InputError("babble needs a pool of at least 2 utterances")
    k = int(rng.integers(n_talkers[0], n_talkers[1] + 1))
    picks = rng.choice(len(utterances), size=min(k, len(utterances)), replace=False)
    out = np.zeros(n)
    for i in picks:
        talker = _unit_rms(_crop_or_loop(rng, np.asarray(utterances[int(i)]), n))
        out += talker * 10 ** (rng.uniform(-3, 3) / 20)
    return _unit_rms(out)


def transients(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """A pink floor 20-30 dB down with 1-3 bursts per second of decaying band-passed noise.

    Shape: -> (n,)
    """
    out = coloured_noise(rng, n, 1.0) * 10 ** (-rng.uniform(20, 30) / 20)
    n_events = max(1, int(rng.poisson(rng.uniform(1, 3) * n / sample_rate)))
    nyq = sample_rate / 2
    for _ in range(n_events):
        length = int(rng.uniform(0.01, 0.3) * sample_rate)
        lo = rng.uniform(50, nyq * 0.3)
        hi = min(rng.uniform(lo * 2, nyq * 0.95), nyq * 0.95)
        sos = butter(2, (lo, hi), "bandpass", fs=sample_rate, output="sos")
        burst = sosfilt(sos, rng.standard_normal(length))
        burst *= np.exp(-np.arange(length) / (length / rng.uniform(3, 8)))
        start = int(rng.integers(max(1, n - length)))
        piece = burst[: n - start] * 10 ** (rng.uniform(-6, 6) / 20) / (np.abs(burst).max() + 1e-9)
        out[start : start + len(piece)] += piece
    return _unit_rms(out)


def make_noise(
    kind: str,
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    babble_pool: Sequence[np.ndarray] = (),
    recordings: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """One clip of noise ``kind`` (see :data:`NOISE_KINDS`), RMS 1.

    Shape: -> (n,)
    """
    if kind == "coloured":
        return coloured_noise(rng, n, float(rng.uniform(-1.0, 2.0)))
    if kind == "babble":
        return babble(rng, n, babble_pool)
    if kind == "transient":
        return transients(rng, n, sample_rate)
    if kind == "real":
        if not recordings:
            raise InputError("noise kind 'real' needs noise recordings (none were given)")
        return _unit_rms(_crop_or_loop(rng, recordings[int(rng.integers(len(recordings)))], n))
    raise InputError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
