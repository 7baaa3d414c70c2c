"""edgesep.audio: reading with clear errors, atomic writing, resampling (whole and streamed)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep import audio
from edgesep.audio import AtomicWriter, AudioError, StreamResampler


def _sine(freq: float, sr: int, n: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def _stereo(n: int = 3001, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.9, 0.9, (2, n)).astype(np.float32)


# ---------------------------------------------------------------- reading


def test_read_round_trip_float_and_pcm(tmp_path: Path) -> None:
    x = _stereo()
    audio.write(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    y, sr = audio.read(tmp_path / "f.wav")
    assert sr == 16000 and y.dtype == np.float32 and y.shape == (2, 3001)
    np.testing.assert_array_equal(y, x)

    audio.write(tmp_path / "p.flac", x, 8000)  # PCM_16
    y, sr = audio.read(tmp_path / "p.flac")
    assert sr == 8000
    assert np.abs(y - x).max() <= 1.0 / 32768 + 1e-7

    m, _ = audio.read(tmp_path / "f.wav", mono=True)
    assert m.shape == (1, 3001)
    np.testing.assert_allclose(m[0], x.mean(axis=0), atol=1e-7)
    assert audio.info(tmp_path / "p.flac") == audio.AudioInfo(8000, 2, 3001)


def _missing(d: Path) -> Path:
    return d / "nope.wav"


def _text_as_wav(d: Path) -> Path:
    p = d / "notes.wav"
    p.write_text("this is not audio\n")
    return p


def _empty_wav(d: Path) -> Path:
    p = d / "empty.wav"
    sf.write(p, np.zeros((0, 1), np.float32), 8000)
    return p


def _nan_wav(d: Path) -> Path:
    p = d / "nan.wav"
    x = np.zeros(100, np.float32)
    x[37] = np.nan
    sf.write(p, x, 8000, subtype="FLOAT")
    return p


def _rate_500(d: Path) -> Path:
    p = d / "slow.wav"
    sf.write(p, np.zeros(100, np.float32), 500)
    return p


BAD_FILES = {
    "missing": (_missing, "not found"),
    "text": (_text_as_wav, "not a readable audio file"),
    "empty": (_empty_wav, "empty"),
    "nan": (_nan_wav, "NaN or Inf"),
    "rate": (_rate_500, "500 Hz"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_one_line_error_naming_file(tmp_path: Path, case: str) -> None:
    make, problem = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(AudioError) as from_read:
        audio.read(path)
    with pytest.raises(AudioError) as from_blocks:
        if case == "nan":  # NaN is only seen when the block holding it is read
            list(audio.iter_blocks(path, 64))
        else:  # everything else fails before the first block
            audio.iter_blocks(path, 64)
    for err in (from_read, from_blocks):
        msg = str(err.value)
        assert msg.startswith(f"{path}: "), msg
        assert problem in msg and "\n" not in msg


def test_iter_blocks_streams_same_data(tmp_path: Path) -> None:
    x = _stereo(2500)
    audio.write(tmp_path / "a.wav", x, 8000, subtype="FLOAT")
    blocks = list(audio.iter_blocks(tmp_path / "a.wav", 1000))
    assert [b.shape for b in blocks] == [(2, 1000), (2, 1000), (2, 500)]
    assert all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), x)


def test_iter_blocks_nan_in_a_later_block(tmp_path: Path) -> None:
    x = np.zeros((1, 2500), np.float32)
    x[0, 2100] = np.inf
    path = tmp_path / "late.wav"
    sf.write(path, x.T, 8000, subtype="FLOAT")
    it = audio.iter_blocks(path, 1000)
    assert next(it).shape == (1, 1000)  # clean blocks come out before the bad one
    assert next(it).shape == (1, 1000)
    with pytest.raises(AudioError, match="frame 2100") as err:
        next(it)
    assert str(err.value).startswith(str(path))


# ---------------------------------------------------------------- writing


def test_write_shapes_dirs_and_clipping(tmp_path: Path) -> None:
    x = np.array([0.5, 1.5, -2.0, 0.25], np.float32)
    p = audio.write(tmp_path / "a" / "b" / "mono.wav", x, 8000)  # creates parents, (T,) input
    y, _ = audio.read(p)
    assert y.shape == (1, 4)
    np.testing.assert_allclose(y[0], [0.5, 1.0, -1.0, 0.25], atol=1e-4)  # PCM clips
    audio.write(tmp_path / "f.wav", x, 8000, subtype="FLOAT")
    np.testing.assert_array_equal(audio.read(tmp_path / "f.wav")[0][0], x)  # FLOAT as given
    audio.write(tmp_path / "v.ogg", _sine(440, 8000, 4000), 8000, subtype=None)  # VORBIS
    assert audio.info(tmp_path / "v.ogg").n_channels == 1
    with pytest.raises(AudioError, match="PCM_16 cannot be written as OGG"):
        audio.write(tmp_path / "bad.ogg", x, 8000)


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_atomic_writer_failure_leaves_old_file_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "out.wav"
    audio.write(dest, _sine(440, 8000, 800), 8000)
    before = dest.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), AtomicWriter(dest, 8000, 2) as w:
        w.write(_stereo(4000))
        assert not _no_temp_files(tmp_path)  # the data goes to a temp file meanwhile
        raise RuntimeError("boom")
    assert dest.read_bytes() == before
    assert _no_temp_files(tmp_path)

    # a bad block (NaN) also aborts cleanly, naming the destination
    bad = _stereo(10)
    bad[1, 3] = np.nan
    with pytest.raises(AudioError, match="NaN") as err, AtomicWriter(dest, 8000, 2) as w:
        w.write(_stereo(100))
        w.write(bad)
    assert str(err.value).startswith(str(dest))
    assert dest.read_bytes() == before and _no_temp_files(tmp_path)

    new = tmp_path / "new.wav"
    with pytest.raises(KeyboardInterrupt), AtomicWriter(new, 8000, 1) as w:
        w.write(_sine(440, 8000, 100))
        raise KeyboardInterrupt
    assert not new.exists() and _no_temp_files(tmp_path)


def test_atomic_writer_streams_and_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "out.wav"
    audio.write(dest, _sine(440, 8000, 800), 8000)
    x = _stereo(3000)
    with AtomicWriter(dest, 16000, 2, subtype="FLOAT") as w:
        for i in range(0, 3000, 701):
            w.write(x[:, i : i + 701])
        assert w.frames_written == 3000
    y, sr = audio.read(dest)
    assert sr == 16000
    np.testing.assert_array_equal(y, x)
    assert _no_temp_files(tmp_path)


# ---------------------------------------------------------------- resampling


def _spectrum_peak(x: np.ndarray, sr: int) -> tuple[float, np.ndarray, np.ndarray]:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return float(freqs[np.argmax(spec)]), spec, freqs


def test_resample_keeps_sine_and_removes_content_above_nyquist() -> None:
    sr_in, sr_out, n = 16000, 8000, 16000
    x = _sine(440, sr_in, n, 0.5) + _sine(6000, sr_in, n, 0.5)  # 6 kHz > new Nyquist 4 kHz
    y = audio.resample(x, sr_in, sr_out)
    assert y.shape == (8000,) and y.dtype == np.float32
    mid = slice(500, -500)
    np.testing.assert_allclose(y[mid], _sine(440, sr_out, 8000, 0.5)[mid], atol=2e-3)
    peak, spec, freqs = _spectrum_peak(y[mid], sr_out)
    assert abs(peak - 440) < 2
    # 6 kHz would alias to 2 kHz if it were not filtered out first
    alias = spec[np.abs(freqs - 2000) < 20].max()
    assert alias < 1e-3 * spec.max()

    up = audio.resample(_sine(440, 8000, 8000)[None], 8000, 44100)
    assert up.shape == (1, 44100)
    np.testing.assert_allclose(up[0, 2000:-2000], _sine(440, 44100, 44100)[2000:-2000], atol=2e-3)
    x2 = _stereo(100)
    assert audio.resample(x2, 8000, 8000) is x2


@pytest.mark.parametrize(("sr_in", "sr_out"), [(44100, 16000), (8000, 16000), (16000, 16000)])
def test_stream_resampler_matches_whole_array(sr_in: int, sr_out: int) -> None:
    x = _stereo(20011, seed=1)
    whole = audio.resample(x, sr_in, sr_out)
    rs = StreamResampler(sr_in, sr_out, 2)
    sizes = [1, 999, 4096, 7, 3000]
    parts, i, k = [], 0, 0
    while i < x.shape[1]:
        n = sizes[k % len(sizes)]
        parts.append(rs.process(x[:, i : i + n]))
        i, k = i + n, k + 1
    parts.append(rs.flush())
    assert all(p.shape[0] == 2 and p.dtype == np.float32 for p in parts)
    streamed = np.concatenate(parts, axis=1)
    expected = round(x.shape[1] * sr_out / sr_in)
    assert abs(streamed.shape[1] - expected) <= 2
    assert abs(whole.shape[1] - expected) <= 2
    n = min(streamed.shape[1], whole.shape[1])
    np.testing.assert_allclose(streamed[:, 50 : n - 50], whole[:, 50 : n - 50], atol=1e-5)
    with pytest.raises(RuntimeError):
        rs.process(x[:, :10])


def test_to_mono_and_peak_normalize() -> None:
    x = np.array([[1.0, -1.0, 0.5], [0.0, 1.0, 0.5]], np.float32)
    np.testing.assert_allclose(audio.to_mono(x), [[0.5, 0.0, 0.5]])
    row = x[0]
    assert audio.to_mono(row) is row
    y = audio.peak_normalize(np.array([0.1, -0.4, 0.2], np.float32), peak=0.8)
    np.testing.assert_allclose(y, [0.2, -0.8, 0.4], rtol=1e-6)
    z = np.zeros(5, np.float32)
    np.testing.assert_array_equal(audio.peak_normalize(z), z)


def test_truncated_wav_loud_float_wav_and_broken_mp3(tmp_path: Path) -> None:
    whole = tmp_path / "whole.wav"
    sf.write(whole, np.zeros(8000, np.float32), 8000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:8000])  # header promises 8000 frames, ~3980 remain
    with pytest.warns(audio.AudioWarning, match=r"of the 8000 frames its header promises"):
        x, _ = audio.read(cut)
    assert 3900 < x.shape[1] < 4000
    with pytest.warns(audio.AudioWarning, match="cut short"):
        list(audio.iter_blocks(cut, 1000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio.read(whole)  # an intact file: no warning
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.full(800, 1.5, np.float32), 8000, subtype="FLOAT")
    with pytest.warns(audio.AudioWarning, match=r"reach 1.50, above full scale.*--subtype FLOAT"):
        y, _ = audio.read(loud)
    assert y.max() == 1.5  # the values are kept
    with pytest.warns(audio.AudioWarning, match="above full scale"):
        list(audio.iter_blocks(loud, 100))
    mp3 = tmp_path / "broken.mp3"
    mp3.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 12)
    with pytest.raises(AudioError, match="do not decode as audio") as err:
        audio.info(mp3)
    assert "does not exist" not in str(err.value)
