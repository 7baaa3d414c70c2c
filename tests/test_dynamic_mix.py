"""Dynamic mixing (shapes, mix = sum, distinct speakers, seeded stream) and the augmentations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from edgesep.config import replace
from edgesep.data.augment import (
    AugmentConfig,
    augment,
    band_filter,
    band_limit,
    reverberate,
    speed_perturb,
    synthetic_rir,
)
from edgesep.data.dynamic import DynamicMixConfig, DynamicMixDataset, PoolConfig

SR = 8000


def write_speakers(root: Path, f0s: dict[str, float], seconds: float = 0.6) -> Path:
    """ROOT/train/<speaker>/<utt>.wav: two harmonic-tone utterances per speaker."""
    rng = np.random.default_rng(len(f0s))
    t = np.arange(int(SR * seconds)) / SR
    for name, f0 in f0s.items():
        for u in range(2):
            x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.05 * u) * t) + 0.01 * rng.standard_normal(
                len(t)
            )
            path = root / "train" / name / f"{name}_{u}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f0s = {"ann": 120.0, "bob": 180.0, "cid": 250.0, "dee": 330.0}
    return write_speakers(tmp_path_factory.mktemp("dyn") / "corpus", f0s)


def dataset(root: Path, seed: int = 0, **changes: Any) -> DynamicMixDataset:
    base = DynamicMixConfig(
        pools=(PoolConfig(str(root)),), segment_seconds=0.25, sample_rate=SR, epoch_size=16
    )
    return DynamicMixDataset(replace(base, **changes), seed=seed)


def test_items_have_segment_shapes_and_mix_is_sum(corpus: Path) -> None:
    ds = dataset(corpus)
    assert len(ds) == 16
    for i in range(4):
        mix, sources = ds[i]
        assert mix.dtype == sources.dtype == torch.float32
        assert mix.shape == (1, 2000) and sources.shape == (2, 2000)
        torch.testing.assert_close(mix[0], sources.sum(0), atol=1e-6, rtol=0)
        assert 0 < float(mix.abs().max()) <= 0.99
        assert all(float(s.pow(2).mean()) > 0 for s in sources)


def test_sources_come_from_distinct_speakers(corpus: Path) -> None:
    ds = dataset(corpus, n_src=3)
    seen: set[str] = set()
    for i in range(12):
        example = ds.draw(i)
        assert len(set(example.speakers)) == 3
        seen.update(example.speakers)
        mix, sources = ds[i]
        np.testing.assert_array_equal(mix.numpy(), example.mix)
        np.testing.assert_array_equal(sources.numpy(), example.sources)
    assert seen == {"ann", "bob", "cid", "dee"}


def test_stream_is_a_function_of_seed_epoch_index(corpus: Path) -> None:
    a, b = dataset(corpus, seed=3), dataset(corpus, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    for i in (0, 5):
        for x, y in zip(a[i], b[i], strict=True):
            assert torch.equal(x, y)
    assert not torch.equal(a[0][1], a[1][1])  # another index
    b.set_epoch(3)
    assert not torch.equal(a[0][1], b[0][1])  # another epoch
    assert not torch.equal(a[0][1], dataset(corpus, seed=4, epoch_size=16)[0][1])  # another seed
    # reading items in another order, or twice, changes nothing
    b.set_epoch(2)
    first = b[5][1].clone()
    b[0], b[7]
    assert torch.equal(b[5][1], first)


def test_exhausted_pool_gives_way_to_another(tmp_path: Path, corpus: Path) -> None:
    solo = write_speakers(tmp_path / "solo", {"zed": 200.0})
    ds = dataset(corpus, pools=(PoolConfig(str(solo), weight=50.0), PoolConfig(str(corpus))))
    from_solo = 0
    for i in range(12):
        speakers = ds.draw(i).speakers
        assert len(set(speakers)) == 2
        from_solo += speakers[0] == "zed"
    assert from_solo >= 9  # the heavy pool is still preferred when it can give a speaker


def test_too_few_speakers_or_wrong_rate_is_an_error(tmp_path: Path, corpus: Path) -> None:
    solo = write_speakers(tmp_path / "solo", {"zed": 200.0})
    with pytest.raises(ValueError, match="speakers"):
        dataset(solo)
    with pytest.raises(ValueError, match="16000 Hz"):
        dataset(corpus, sample_rate=16000)


def _spectrum(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    power = np.abs(np.fft.rfft(x)) ** 2
    return np.fft.rfftfreq(len(x), 1 / sr), power


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_scales_length_and_pitch(factor: float) -> None:
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    y = speed_perturb(x, factor, SR)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) / factor) <= 2
    freqs, power = _spectrum(y, SR)
    assert freqs[np.argmax(power)] == pytest.approx(500 * factor, abs=2)


def test_band_filter_removes_energy_outside_the_band() -> None:
    x = np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32)
    freqs, before = _spectrum(x, SR)
    _, low = _spectrum(band_filter(x, SR, lowpass_hz=2000), SR)
    assert low[freqs > 3000].sum() < 0.01 * before[freqs > 3000].sum()
    assert low[freqs < 1500].sum() == pytest.approx(before[freqs < 1500].sum(), rel=0.05)
    _, high = _spectrum(band_filter(x, SR, highpass_hz=300), SR)
    assert high[freqs < 100].sum() < 0.01 * before[freqs < 100].sum()
    assert high[freqs > 600].sum() == pytest.approx(before[freqs > 600].sum(), rel=0.05)
    np.testing.assert_array_equal(band_filter(x, SR), x)


def test_band_limit_cuts_the_low_or_the_high_edge() -> None:
    x = np.random.default_rng(1).standard_normal(4 * SR).astype(np.float32)
    freqs, before = _spectrum(x, SR)
    edges = (freqs < 20, freqs > 3950)  # outside every high-pass (>= 50 Hz) / low-pass (<= 3.8 kHz)
    changed = 0
    for seed in range(20):
        y = band_limit(x, np.random.default_rng(seed), SR)
        assert y.shape == x.shape and y.dtype == np.float32
        if np.array_equal(y, x):
            continue  # both filters skipped (probability 0.09)
        changed += 1
        _, after = _spectrum(y, SR)
        assert any(after[e].sum() < 0.05 * before[e].sum() for e in edges), seed
    assert changed >= 14


def test_rir_is_a_direct_path_then_a_decaying_tail() -> None:
    sr, rt60 = 16000, 0.4
    rir = synthetic_rir(rt60, np.random.default_rng(0), sr)
    assert len(rir) == int(rt60 * sr)
    assert rir[0] == 1.0 and np.abs(rir[1:]).max() < 1.0
    assert not rir[1 : int(0.002 * sr) + 1].any()  # nothing arrives before the 2 ms pre-delay
    # energy decays by 60 dB over rt60: fit a line to the tail's level in 20 ms windows
    win = int(0.02 * sr)
    tail = rir[int(0.01 * sr) + 1 :]
    n = len(tail) // win
    level = 10 * np.log10((tail[: n * win].reshape(n, win) ** 2).mean(axis=1))
    slope = np.polyfit((np.arange(n) + 0.5) * win / sr, level, 1)[0]
    assert slope == pytest.approx(-60 / rt60, rel=0.2)
    impulse = np.zeros(len(rir) + 100, dtype=np.float32)
    impulse[0] = 1.0
    wet = reverberate(impulse, rir)
    assert wet.shape == impulse.shape
    np.testing.assert_allclose(wet[: len(rir)], rir, atol=1e-6)
    np.testing.assert_allclose(wet[len(rir) :], 0.0, atol=1e-6)


def test_augment_applies_what_its_config_asks() -> None:
    x = np.random.default_rng(2).standard_normal(SR).astype(np.float32)
    rng = np.random.default_rng(0)
    off = AugmentConfig(p_speed=0, p_bandlimit=0, p_reverb=0)
    np.testing.assert_array_equal(augment(x, rng, SR, off), x)
    fast = AugmentConfig(p_speed=1, speed_range=(1.25, 1.25), p_bandlimit=0, p_reverb=0)
    assert abs(len(augment(x, rng, SR, fast)) - SR / 1.25) <= 2
    wet = AugmentConfig(p_speed=0, p_bandlimit=0, p_reverb=1, rt60_range=(0.3, 0.3))
    y = augment(x, rng, SR, wet)
    assert y.shape == x.shape and not np.allclose(y, x)
