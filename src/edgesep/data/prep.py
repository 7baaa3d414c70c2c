"""Shared steps of corpus builders: trim silence, normalise level, write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def trim_silence(x: np.ndarray, sample_rate: int, threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing frames quieter than ``threshold_db`` below the peak frame (10 ms)."""
    hop = max(1, sample_rate // 100)
    n = len(x) // hop
    if n == 0:
        return x
    energy = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (threshold_db / 10))
    if loud.size == 0:
        return x[:0]
    start, stop = max(0, (loud[0] - 1) * hop), min(len(x), (loud[-1] + 2) * hop)
    return x[start:stop]


def rms_normalize(x: np.ndarray, target_db: float = -25.0) -> np.ndarray:
    """Scale to ``target_db`` dBFS RMS, then down if needed so the peak stays below 0.99."""
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
    if rms < 1e-9:
        return x.astype(np.float32)
    y = x * (10 ** (target_db / 20) / rms)
    peak = float(np.abs(y).max())
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sample_rate: int) -> None:
    """16-bit WAV; the caller builds inside :func:`edgesep.atomic.atomic_dir`, so no temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16")
