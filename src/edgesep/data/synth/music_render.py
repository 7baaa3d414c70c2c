"""Render composed songs stem by stem, mix and master them, and write a MUSDB18-HQ-style set.

Each instrument of a stem is rendered alone with TinySoundFont from the General MIDI soundfont
that pretty_midi ships (TimGM6mb.sf2), panned (constant power) and summed into its stereo stem.
Stems get a loudness drawn around a per-stem level; a light "glue" compressor computed on the mix
and a final peak gain are applied to every stem alike, so mastering stays a linear operation on
the stems. Stems are then quantised to 16-bit integers and the mixture is their integer sum:
``mixture.wav`` equals the sum of the four stem files sample for sample.

TinySoundFont is installed with ``pip install --no-deps tinysoundfont`` (its optional playback
dependency, pyaudio, does not build without PortAudio headers; rendering does not need it).

Layout written (the MUSDB18-HQ layout)::

    OUT/card.json
    OUT/{train,valid,test}/<song>/{mixture,vocals,drums,bass,other}.wav   (16-bit stereo)
    OUT/{train,valid,test}/<song>/midi/{vocals,drums,bass,other}.mid

References: Rafii et al., "MUSDB18-HQ - an uncompressed version of MUSDB18", 2019
(doi:10.5281/zenodo.3338373); TinySoundFont (github.com/schellingb/TinySoundFont).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import soundfile as sf

from edgesep.atomic import atomic_dir
from edgesep.data.cards import content_hash, write_card
from edgesep.data.synth.music import STEMS, Song, compose_song
from edgesep.errors import InputError

SPLITS = ("train", "valid", "test")
# mean level of each stem vs the others (dB) and the spread drawn around it per song
STEM_LEVEL_DB = {"vocals": 0.0, "drums": -1.0, "bass": -3.0, "other": -3.0}
LEVEL_SPREAD_DB = 4.0
PAN_SPREAD = {"vocals": 0.15, "drums": 0.1, "bass": 0.1, "other": 0.8}  # |pan| <= this
SEED_STRIDE = 1_000_003  # splits draw songs from disjoint index ranges of one seed


def soundfont_path() -> Path:
    """The General MIDI soundfont bundled inside pretty_midi."""
    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretty_midi's TimGM6mb.sf2 soundfont is missing")
    return path


class StemRenderer:
    """One TinySoundFont synthesiser with the soundfont loaded once, reused for every part."""

    def __init__(self, sample_rate: int, soundfont: str | Path | None = None) -> None:
        try:
            import tinysoundfont
        except ImportError as exc:
            raise ImportError(
                "music synthesis needs tinysoundfont: pip install --no-deps tinysoundfont"
            ) from exc
        self.sample_rate = sample_rate
        self.synth = tinysoundfont.Synth(samplerate=sample_rate)
        self.soundfont = Path(soundfont) if soundfont is not None else soundfont_path()
        if not self.soundfont.is_file():
            raise FileNotFoundError(f"{self.soundfont}: no such soundfont")
        self.sfid = self.synth.sfload(str(self.soundfont))

    def instrument(self, inst: pretty_midi.Instrument, n_samples: int) -> np.ndarray:
        """One instrument's notes as stereo audio.

        Shape: -> (2, n_samples) float32
        """
        synth = self.synth
        synth.sounds_off()
        bank = 128 if inst.is_drum else 0
        synth.program_select(0, self.sfid, bank, inst.program, inst.is_drum)
        events: list[tuple[int, int, int, int]] = []  # (sample, on?, pitch, velocity)
        for note in inst.notes:
            events.append((round(note.start * self.sample_rate), 1, note.pitch, note.velocity))
            events.append((round(note.end * self.sample_rate), 0, note.pitch, 0))
        events.sort()  # note-offs first where an off and an on share a sample
        out = np.zeros((n_samples, 2), dtype=np.float32)
        pos = 0
        for sample, on, pitch, velocity in events:
            sample = min(sample, n_samples)
            if sample > pos:
                buf = synth.generate_simple(sample - pos)
                out[pos:sample] = np.frombuffer(buf, dtype=np.float32).reshape(-1, 2)
                pos = sample
            if on:
                synth.noteon(0, pitch, velocity)
            else:
                synth.noteoff(0, pitch)
        if pos < n_samples:
            buf = synth.generate_simple(n_samples - pos)
            out[pos:] = np.frombuffer(buf, dtype=np.float32).reshape(-1, 2)
        synth.sounds_off()
        return out.T.copy()


def _pan(x: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan of the mono sum of stereo ``x``; pan in [-1 (left), 1 (right)].

    Shape: (2, T) -> (2, T)
    """
    mono = x.mean(axis=0)
    angle = (pan + 1.0) * np.pi / 4
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)]) * np.sqrt(2.0)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def glue_gain(
    mix: np.ndarray, sample_rate: int, ratio: float = 2.0, above_db: float = 4.0
) -> np.ndarray:
    """A slow bus compressor's gain curve from the mix (2:1 above its RMS + ``above_db``).

    20 ms RMS blocks, 10 ms attack / 200 ms release smoothing, linearly interpolated per sample.

    Shape: mix (C, T) -> (T,)
    """
    block = max(1, round(0.02 * sample_rate))
    n_blocks = -(-mix.shape[-1] // block)
    padded = np.zeros((mix.shape[0], n_blocks * block))
    padded[:, : mix.shape[-1]] = mix
    level = np.sqrt(np.mean(padded.reshape(mix.shape[0], n_blocks, block) ** 2, axis=(0, 2)))
    level_db = 20 * np.log10(level + 1e-9)
    threshold = 20 * np.log10(_rms(mix) + 1e-9) + above_db
    target = -np.maximum(level_db - threshold, 0.0) * (1.0 - 1.0 / ratio)
    attack, release = np.exp(-0.02 / 0.01), np.exp(-0.02 / 0.2)
    smooth = np.empty_like(target)
    g = 0.0
    for i, t in enumerate(target):
        coef = attack if t < g else release
        g = coef * g + (1 - coef) * t
        smooth[i] = g
    centres = (np.arange(n_blocks) + 0.5) * block
    return np.asarray(10 ** (np.interp(np.arange(mix.shape[-1]), centres, smooth) / 20))


def render_song(
    song: Song, sample_rate: int, renderer: StemRenderer | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Stems and mixture as 16-bit integers, with the mixture the exact sum of the stems.

    Shape: -> stems (S, 2, T) int16 in :data:`STEMS` order, mixture (2, T) int16
    """
    renderer = renderer or StemRenderer(sample_rate)
    # the mix draws its own stream of the song's seed: composing and mixing stay independent
    rng = np.random.default_rng([*song.seed, 1])
    n_samples = round(song.seconds * sample_rate)
    stems = np.zeros((len(STEMS), 2, n_samples))
    levels: dict[str, float] = {}
    for k, stem in enumerate(STEMS):
        for inst in song.parts[stem].instruments:
            audio = renderer.instrument(inst, n_samples).astype(np.float64)
            if stem != "drums":  # drum kits keep the soundfont's own stereo placement
                audio = _pan(audio, float(rng.uniform(-1, 1) * PAN_SPREAD[stem]))
            stems[k] += audio
        level = STEM_LEVEL_DB[stem] + float(rng.uniform(-LEVEL_SPREAD_DB, LEVEL_SPREAD_DB))
        levels[stem] = round(level, 2)
        rms = _rms(stems[k])
        if rms > 0:
            stems[k] *= 0.05 * 10 ** (level / 20) / rms
    stems *= glue_gain(stems.sum(axis=0), sample_rate)[None, None]
    peak_db = float(rng.uniform(-3.0, -1.0))
    peak = np.abs(stems.sum(axis=0)).max()
    if peak > 0:
        stems *= 10 ** (peak_db / 20) / peak
    # each stem rounds by at most half a step, so the integer sum stays below full scale
    stems_i = np.round(stems * 32767).astype(np.int32)
    mixture = stems_i.sum(axis=0)
    if np.abs(mixture).max() > 32767:
        raise RuntimeError(f"{song.name}: mixture clips after quantisation")
    info = {"levels_db": levels, "peak_dbfs": round(peak_db, 2)}
    return stems_i.astype(np.int16), mixture.astype(np.int16), info


def _write_song(
    folder: Path, song: Song, sample_rate: int, renderer: StemRenderer
) -> dict[str, Any]:
    stems, mixture, info = render_song(song, sample_rate, renderer)
    folder.mkdir(parents=True)
    sf.write(folder / "mixture.wav", mixture.T, sample_rate, subtype="PCM_16")
    for stem, audio in zip(STEMS, stems, strict=True):
        sf.write(folder / f"{stem}.wav", audio.T, sample_rate, subtype="PCM_16")
    (folder / "midi").mkdir()
    for stem in STEMS:
        song.parts[stem].write(str(folder / "midi" / f"{stem}.mid"))
    return {
        "name": song.name,
        "tempo": round(song.tempo, 2),
        "key": song.key,
        "minor": song.minor,
        "form": list(song.form),
        "programs": {k: list(v) for k, v in song.programs.items()},
        "seconds": round(mixture.shape[-1] / sample_rate, 3),
        **info,
    }


def generate_music_dataset(
    out_dir: str | Path,
    counts: dict[str, int],
    sample_rate: int = 16000,
    seed: int = 0,
    song_seconds: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    soundfont: str | Path | None = None,
) -> dict[str, Any]:
    """Compose, render and write ``counts[split]`` songs per split; returns the data card.

    ``soundfont`` replaces pretty_midi's TimGM6mb.sf2 (another General MIDI soundfont renders the
    same compositions with other timbres: a check of how a model trained on one fares on another).

    Song ``i`` of split ``k`` is song ``k * SEED_STRIDE + i`` of ``seed``: splits never share a
    song, and adding songs to one split leaves the others unchanged.
    """
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise InputError(f"unknown split(s) {sorted(unknown)}; expected some of {list(SPLITS)}")
    if any(n < 0 for n in counts.values()) or song_seconds < 3:
        raise InputError(f"counts must be >= 0 and song_seconds >= 3, got {counts}, {song_seconds}")
    total = sum(counts.values())
    renderer = StemRenderer(sample_rate, soundfont)
    songs: dict[str, list[dict[str, Any]]] = {}
    render_seconds = 0.0
    done = 0
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for k, split in enumerate(SPLITS):
            songs[split] = []
            for i in range(counts.get(split, 0)):
                song = compose_song(seed, k * SEED_STRIDE + i, song_seconds)
                song = _renamed(song, f"{split}{i:04d}")
                t0 = time.perf_counter()
                songs[split].append(
                    _write_song(tmp / split / song.name, song, sample_rate, renderer)
                )
                render_seconds += time.perf_counter() - t0
                done += 1
                if progress:
                    progress(done, total)
        files = sorted(tmp.rglob("*.wav"))
        audio_seconds = sum(s["seconds"] for rows in songs.values() for s in rows)
        card = {
            "kind": "music-multitrack",
            "layout": "musdb18hq",
            "generator": "edgesep.data.synth.music (pretty_midi + tinysoundfont)",
            "soundfont": renderer.soundfont.name,
            "seed": seed,
            "sample_rate": sample_rate,
            "channels": 2,
            "stems": list(STEMS),
            "song_seconds": song_seconds,
            "counts": {s: counts.get(s, 0) for s in SPLITS},
            "duration_seconds": round(audio_seconds, 2),
            "render_x_realtime": round(audio_seconds / max(render_seconds, 1e-9), 1),
            "songs": songs,
            "content_hash": content_hash(files, tmp),
        }
        write_card(tmp, card)
    return card


def _renamed(song: Song, name: str) -> Song:
    from dataclasses import replace

    return replace(song, name=name)
