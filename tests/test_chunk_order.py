"""Chunked separation keeps each speaker on one output, across chunks and stereo channels.

The chunk function separates a low tone from a high tone with two filters, exactly, but swaps its
outputs on every other call (and, for stereo, in the second channel), as a permutation-invariant
model may. Without reordering, the high tone lands on output 1 in every other chunk.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as sps

from edgesep.chunking import OverlapAdd, align_sources, separate_array_with, unnamed_sources

SR = 8000


def _sources(n: int, n_chan: int) -> np.ndarray:
    t = np.arange(n) / SR
    low = np.sin(2 * np.pi * 200 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t))
    high = 0.7 * np.sin(2 * np.pi * 2500 * t) * (1 + 0.5 * np.cos(2 * np.pi * 0.2 * t))
    return np.stack([np.tile(low, (n_chan, 1)), np.tile(high, (n_chan, 1))]).astype(np.float32)


class SwappingSeparator:
    """Splits below / above 1 kHz; swaps its outputs on odd calls and in channel 1."""

    def __init__(self) -> None:
        self.calls = 0
        self.sos_lo = sps.butter(8, 1000, "low", fs=SR, output="sos")
        self.sos_hi = sps.butter(8, 1000, "high", fs=SR, output="sos")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        lo, hi = sps.sosfiltfilt(self.sos_lo, x), sps.sosfiltfilt(self.sos_hi, x)
        out = np.stack([lo, hi]).astype(np.float32)
        if self.calls % 2:
            out = out[::-1].copy()
        if x.shape[0] > 1:
            out[:, 1] = out[::-1, 1]
        self.calls += 1
        return out


@pytest.mark.parametrize("n_chan", [1, 2])
@pytest.mark.parametrize("reorder", [True, False])
def test_speakers_stay_on_their_output_across_chunks(n_chan: int, reorder: bool) -> None:
    n = 20 * SR
    src = _sources(n, n_chan)
    fn = SwappingSeparator()
    chunker = OverlapAdd(
        fn, 2, SR, chunk_seconds=4.0, overlap_seconds=1.0, rescale=False, reorder=reorder
    )
    est = separate_array_with(chunker, src.sum(0), SR)  # (S, C, T)
    assert fn.calls >= 6
    # the first chunk decides the order: low tone on output 0 in every 0.5 s piece, every channel
    err = [
        float(np.mean((est[:, c, a : a + SR // 2] - src[:, c, a : a + SR // 2]) ** 2))
        for c in range(n_chan)
        for a in range(SR, n - SR, SR // 2)
    ]
    if reorder:
        assert max(err) < 1e-3
    else:
        assert max(err) > 0.1  # the defect the reordering mends


def test_align_sources_finds_the_permutation_of_three() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((3, 2, 400)).astype(np.float32)
    est = ref[[2, 0, 1]] + 0.1 * rng.standard_normal((3, 2, 400)).astype(np.float32)
    np.testing.assert_array_equal(align_sources(est, ref[..., :100]), est[[1, 2, 0]])


def test_only_unnamed_sources_are_reordered() -> None:
    assert unnamed_sources(("s1", "s2"))
    assert not unnamed_sources(("vocals", "drums", "bass", "other"))
