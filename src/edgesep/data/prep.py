"""Shared steps of corpus builders: trim silence, normalise level, write, build atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
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
    """16-bit WAV; the caller builds inside an :func:`atomic_dir`, so no temp file is needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16")


@contextlib.contextmanager
def atomic_dir(out_dir: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``out_dir``; rename it into place on success.

    An interrupted build leaves no half-written ``out_dir``; a failed one removes its temp folder.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: already exists and is not empty (use overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
