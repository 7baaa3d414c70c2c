"""edgesep.models.apply: chunked overlap-add separation, in memory and streamed file to file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from edgesep import audio
from edgesep.models.apply import ChunkedSeparator, separate_array, separate_file
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build

GAINS = (0.25, -0.75)


class GainSeparator(Separator):
    """Source s = GAINS[s] * mix. Pointwise, so chunking must reproduce it exactly: the
    cross-fade windows sum to 1 and every sample must land where it came from."""

    family = "test-gain"
    config_class = dict

    def __init__(self, sample_rate: int = 8000, hop: int = 1) -> None:
        super().__init__()
        self.sample_rate, self.n_src, self.source_names = sample_rate, 2, ("voice", "rest")
        self.causal, self.lookahead_samples, self.hop = False, 0, hop
        self.calls: list[int] = []

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.calls.append(mix.shape[-1])
        return mix[:, None] * torch.tensor(GAINS).view(1, 2, 1, 1)


def _gains(x: np.ndarray) -> np.ndarray:
    return np.stack([g * x for g in GAINS])


def _blocks(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[:, i : i + size] for i in range(0, x.shape[1], size)]


def _noise(n_chan: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n_chan, n)).astype(np.float32)


# chunk 0.25 s = 2000 samples, overlap 0.05 s = 400, at 8 kHz
@pytest.mark.parametrize("n", [1, 7, 399, 1999, 2000, 2001, 2400, 2401, 5003, 12345])
def test_length_preserved_and_pointwise_model_reproduced(n: int) -> None:
    model = GainSeparator()
    x = _noise(2, n, seed=n)
    cs = ChunkedSeparator(model, chunk_seconds=0.25, overlap_seconds=0.05, rescale=False)
    parts = list(cs.process(_blocks(x, 777)))
    assert all(p.shape[:2] == (2, 2) and p.dtype == np.float32 for p in parts)
    out = np.concatenate(parts, axis=-1)
    assert out.shape == (2, 2, n)
    np.testing.assert_allclose(out, _gains(x), atol=1e-6)
    # never a call on more than one chunk (+ frame-hop rounding for the last one)
    assert max(model.calls) <= cs.chunk_frames
    if n < cs.chunk_frames:
        assert model.calls == [n]  # short input: a single call on all of it
    else:  # every call, the last included, sees a full chunk of context
        assert set(model.calls) == {cs.chunk_frames}


@pytest.mark.parametrize("n", [3, 1001, 2048, 4567])
def test_real_model_odd_lengths(n: int) -> None:
    model = build("convtasnet-test").eval()  # gLN, non-causal
    x = _noise(1, n, seed=n)
    cs = ChunkedSeparator(model, chunk_seconds=0.2, overlap_seconds=0.05, rescale=False)
    out = np.concatenate(list(cs.process(_blocks(x, 500))), axis=-1)
    assert out.shape == (2, 1, n) and np.isfinite(out).all()
    assert cs.chunk_frames % 8 == 0 and cs.hop_frames % 8 == 0  # aligned to the frame hop


def test_cln_model_chunked_matches_whole_signal() -> None:
    """With frame-local norm, a chunk's output equals the whole-signal output except within the
    receptive field R of its edges. convtasnet-test: L=16, hop 8, three blocks of P=3 with
    dilations 1, 2, 4 -> +-7 frames of context, each frame 16 samples wide -> R < 8*8 + 16 = 80
    samples. Chunk starts are multiples of the hop, so frame grids line up. Hence: outside
    the first/last R samples of each overlap the output is exact; inside, the stray chunk's
    weight is at most w = sin^2(pi/2 * R/overlap) of a difference bounded by a few peak values.
    """
    torch.manual_seed(0)
    model = build("convtasnet-test", norm="cLN").eval()
    sr, overlap, r_field = 8000, 800, 80
    x = _noise(2, 10007, seed=3)
    with torch.inference_mode():
        whole = model(torch.from_numpy(x)[None])[0].numpy()
    # reorder=False: the two channels are unrelated noise, whose source order is arbitrary
    cs = ChunkedSeparator(
        model, chunk_seconds=2400 / sr, overlap_seconds=overlap / sr, rescale=False, reorder=False
    )
    assert (cs.chunk_frames, cs.overlap_frames, cs.hop_frames) == (2400, 800, 1600)
    out = np.concatenate(list(cs.process(_blocks(x, 777))), axis=-1)
    err = np.abs(out - whole).max(axis=(0, 1))

    # overlaps: after each full chunk at k*1600, and the last chunk's head at 8000
    edges = np.zeros(x.shape[1], bool)
    for start in (1600, 3200, 4800, 6400, 8000):
        edges[start : start + r_field] = True
        edges[start + overlap - r_field : start + overlap] = True
    scale = float(np.abs(whole).max())
    assert err[~edges].max() < 1e-5 * max(1.0, scale)
    w = np.sin(0.5 * np.pi * r_field / overlap) ** 2
    assert err.max() < 3 * w * scale
    assert err[edges].max() > 0  # the edge bands really are where chunks differ


def test_memory_bounded_on_ten_minute_stream() -> None:
    """10 minutes at 8 kHz, generated on the fly: the backlog stays within a chunk and a hop."""
    sr, n_total, block = 8000, 10 * 60 * 8000, 3001

    def signal(a: int, b: int) -> np.ndarray:
        t = np.arange(a, b, dtype=np.float64)
        return np.stack([np.sin(2e-3 * t), np.cos(7e-4 * t)]).astype(np.float32)

    def blocks() -> Iterator[np.ndarray]:
        for a in range(0, n_total, block):
            yield signal(a, min(n_total, a + block))

    cs = ChunkedSeparator(GainSeparator(sr), chunk_seconds=8.0, overlap_seconds=1.0, rescale=False)
    done = 0
    for part in cs.process(blocks()):
        n = part.shape[-1]
        assert part.shape[:2] == (2, 2)
        np.testing.assert_allclose(part, _gains(signal(done, done + n)), atol=1e-5)
        done += n
    assert done == n_total
    assert 0 < cs.max_buffered_frames < cs.chunk_frames + cs.align

    # one enormous block is no excuse for a bigger backlog
    x = _noise(1, 40 * sr)
    out = np.concatenate(list(cs.process([x])), axis=-1)
    assert out.shape == (2, 1, 40 * sr)
    assert cs.max_buffered_frames < cs.chunk_frames + cs.align


def test_bad_settings_rejected() -> None:
    with pytest.raises(ValueError, match="at most half"):
        ChunkedSeparator(GainSeparator(), chunk_seconds=1.0, overlap_seconds=0.6, rescale=False)
    with pytest.raises(ValueError):
        ChunkedSeparator(GainSeparator(), chunk_seconds=0.0)


def _sines(sr: int, n: int) -> np.ndarray:
    t = np.arange(n) / sr
    return np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(
        np.float32
    )


def test_separate_array_resamples_and_keeps_shape() -> None:
    model = GainSeparator(8000)
    x = _sines(16000, 16001)  # 16 kHz in, 8 kHz model; band-limited well below 4 kHz
    out = separate_array(model, x, 16000, chunk_seconds=0.5, overlap_seconds=0.1, rescale=False)
    assert out.shape == (2, 2, 16001) and out.dtype == np.float32
    mid = slice(400, -400)  # away from the resampler's start/end transients
    np.testing.assert_allclose(out[..., mid], _gains(x)[..., mid], atol=5e-3)
    mono = model.separate(x[0], 16000, chunk_seconds=0.5, overlap_seconds=0.1, rescale=False)
    assert mono.shape == (2, 16001)
    np.testing.assert_allclose(mono, out[:, 0], atol=1e-6)


def test_separate_file_stereo_16k_with_8k_model(tmp_path: Path) -> None:
    sr, n = 16000, 16000 * 2 + 7
    x = _sines(sr, n)
    src = audio.write(tmp_path / "in" / "song.flac", x, sr)
    calls: list[tuple[int, int]] = []
    paths = separate_file(
        GainSeparator(8000),
        src,
        tmp_path / "out",
        chunk_seconds=0.5,
        overlap_seconds=0.1,
        block_seconds=0.3,
        progress=lambda done, total: calls.append((done, total)),
        rescale=False,
    )
    assert paths == {
        "voice": tmp_path / "out" / "song" / "voice.wav",
        "rest": tmp_path / "out" / "song" / "rest.wav",
    }
    x_read, _ = audio.read(src)
    for gain, path in zip(GAINS, paths.values(), strict=True):
        assert sf.info(path).samplerate == sr and sf.info(path).channels == 2
        y, _ = audio.read(path)
        assert y.shape == (2, n)
        np.testing.assert_allclose(y[:, 400:-400], gain * x_read[:, 400:-400], atol=5e-3)
    assert calls[0] == (0, n) and calls[-1] == (n, n) and len(calls) > 3
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_separate_file_real_model_and_failure_leaves_nothing(tmp_path: Path) -> None:
    sr, n = 16000, 12345
    src = audio.write(tmp_path / "mix.wav", _sines(sr, n)[:1], sr)
    model = build("convtasnet-test").eval()
    paths = separate_file(
        model, src, tmp_path / "out", chunk_seconds=0.3, overlap_seconds=0.1, rescale=False
    )
    for path in paths.values():
        y, rate = audio.read(path)
        assert rate == sr and y.shape == (1, n)

    def explode(done: int, total: int) -> None:
        if done > 0:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        separate_file(model, src, tmp_path / "out2", 0.3, 0.1, progress=explode)
    assert not [p for p in (tmp_path / "out2").rglob("*") if p.is_file()]

    with pytest.raises(audio.AudioError, match="not found"):
        separate_file(model, tmp_path / "missing.wav", tmp_path / "out3")
    assert not (tmp_path / "out3").exists()


class ScaledTruth(GainSeparator):
    """Returns the known sources at a wrong gain and sign, as an SI-SNR-trained model may."""

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        low = mix * 0 + self.truth[0]
        return torch.stack([-7.0 * low, 3.0 * (mix - low)], dim=1)


def test_rescale_restores_the_mixture_level() -> None:
    sr = 8000
    x = _sines(sr, 4001)
    model = ScaledTruth(sr)
    model.truth = torch.from_numpy(x[:1])  # source 1 = the 440 Hz sine, source 2 = the rest
    raw = separate_array(model, x[:1] + x[1:], sr, rescale=False)
    assert np.abs(raw).max() > 2.0  # would clip as PCM
    out = separate_array(model, x[:1] + x[1:], sr)
    np.testing.assert_allclose(out[0, 0], x[0], atol=1e-4)
    np.testing.assert_allclose(out[1, 0], x[1], atol=1e-4)
    np.testing.assert_allclose(out.sum(axis=0), x[:1] + x[1:], atol=1e-4)
