"""The synthetic song generator: seeded, exact-sum stems, MUSDB18-HQ layout, a card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pretty_midi = pytest.importorskip("pretty_midi", reason="music synthesis needs the music extra")
pytest.importorskip("tinysoundfont", reason="music synthesis needs tinysoundfont (--no-deps)")

from edgesep.data.cards import content_hash, read_card  # noqa: E402
from edgesep.data.datasets.musdb import STEMS, MusdbDataset  # noqa: E402
from edgesep.data.synth.music import (  # noqa: E402
    BASS_PROGRAMS,
    DRUM_KITS,
    VOCAL_PROGRAMS,
    compose_song,
)
from edgesep.data.synth.music_render import (  # noqa: E402
    StemRenderer,
    generate_music_dataset,
    glue_gain,
    render_song,
)

SR = 8000


def test_compose_is_seeded_and_uses_the_stem_families() -> None:
    a, b, c = compose_song(3, 7, 12.0), compose_song(3, 7, 12.0), compose_song(3, 8, 12.0)
    notes = lambda s: [(n.pitch, n.start) for i in s.parts["vocals"].instruments for n in i.notes]  # noqa: E731
    assert notes(a) == notes(b) and notes(a) != notes(c)
    assert a.seconds <= 12.0 + 1e-9
    assert a.programs["vocals"][0] in VOCAL_PROGRAMS
    assert a.programs["bass"][0] in BASS_PROGRAMS
    assert a.programs["drums"][0] in DRUM_KITS
    assert all(i.is_drum for i in a.parts["drums"].instruments)
    for stem in STEMS:
        pm = a.parts[stem]
        assert isinstance(pm, pretty_midi.PrettyMIDI)
        assert pm.get_end_time() <= a.seconds


def test_render_mixture_is_exact_sum_and_stems_are_stereo_and_distinct() -> None:
    song = compose_song(0, 1, 8.0)
    stems, mix, info = render_song(song, SR, StemRenderer(SR))
    assert stems.dtype == np.int16 and stems.shape == (4, 2, round(song.seconds * SR))
    np.testing.assert_array_equal(stems.astype(np.int32).sum(axis=0), mix.astype(np.int32))
    peak_dbfs = 20 * np.log10(np.abs(mix).max() / 32767)
    assert abs(peak_dbfs - info["peak_dbfs"]) < 0.01
    rms = np.sqrt(np.mean(stems.astype(np.float64) ** 2, axis=(1, 2)))
    assert (rms > 100).all()  # every stem sounds
    # the stems are different signals: no stem correlates strongly with another
    flat = stems.reshape(4, -1).astype(np.float64)
    corr = np.corrcoef(flat)
    assert (np.abs(corr[~np.eye(4, dtype=bool)]) < 0.5).all()
    # the "other" stem is panned: its channels differ
    assert not np.array_equal(stems[3, 0], stems[3, 1])


def test_glue_gain_only_reduces_and_acts_on_loud_parts() -> None:
    t = np.arange(SR * 2) / SR
    x = np.sin(2 * np.pi * 250 * t)[None] * np.where(t < 1.6, 0.05, 0.5)
    g = glue_gain(x, SR)
    assert g.shape == (x.shape[-1],) and (g <= 1 + 1e-12).all()
    assert g[:SR].min() > 0.999  # the quiet part is left alone
    # the loud part settles at 2:1 above (mix RMS + 4 dB), computed by hand
    rms_all = np.sqrt(np.mean(x**2))
    over = 20 * np.log10(0.5 / np.sqrt(2)) - (20 * np.log10(rms_all) + 4.0)
    expected_db = -over / 2
    assert expected_db < -1.0
    assert abs(20 * np.log10(g[-SR // 20]) - expected_db) < 0.2


def test_dataset_layout_card_and_reader(tmp_path: Path) -> None:
    out = tmp_path / "music"
    card = generate_music_dataset(
        out, {"train": 2, "valid": 1, "test": 1}, SR, seed=5, song_seconds=5.0
    )
    for split, n in (("train", 2), ("valid", 1), ("test", 1)):
        songs = sorted(p.name for p in (out / split).iterdir())
        assert len(songs) == n
        for song in songs:
            names = {p.name for p in (out / split / song).glob("*.wav")}
            assert names == {"mixture.wav", *(f"{s}.wav" for s in STEMS)}
            info = sf.info(str(out / split / song / "mixture.wav"))
            assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "PCM_16")
    on_disk = read_card(out)
    assert on_disk["content_hash"] == card["content_hash"]
    assert on_disk["content_hash"] == content_hash(sorted(out.rglob("*.wav")), out)
    assert on_disk["counts"] == {"train": 2, "valid": 1, "test": 1} and on_disk["seed"] == 5
    total = sum(sf.info(str(p)).frames for p in out.glob("*/*/mixture.wav")) / SR
    assert abs(on_disk["duration_seconds"] - total) < 0.01
    item = MusdbDataset(out, "test")[0]
    np.testing.assert_allclose(item["sources"].sum(axis=0), item["mix"], atol=1e-6)
    # the same seed gives the same bytes
    again = generate_music_dataset(
        tmp_path / "again", {"train": 2, "valid": 1, "test": 1}, SR, seed=5, song_seconds=5.0
    )
    assert again["content_hash"] == card["content_hash"]


def test_dataset_rejects_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        generate_music_dataset(tmp_path / "x", {"dev": 1}, SR)
