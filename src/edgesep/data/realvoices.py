"""The many-voice real-speech corpus: every voice of :mod:`edgesep.data.voices`, cleaned and split.

For each speaker: clips are decoded and resampled, exact duplicate files dropped, clipped clips
dropped (more than :data:`CLIP_FRACTION` of the samples at full scale), silence trimmed, every
clip brought to the same active level (home recordings are uneven), and same-speaker clips
joined with short pauses into utterances of a few seconds. Voices that may be one person
(:func:`~edgesep.data.voices.split_group`: the KDE packages' folders of one language) are one
speaker of the corpus, so no mixture pairs a voice with itself, and whole speakers are held out
for validation and test.

The corpus is written in the utterance-corpus layout (:mod:`edgesep.data.corpus`); its card lists
every speaker with its source, language, sex (where documented), median F0, minutes and the clips
dropped. Dynamic mixing draws speakers uniformly within a pool, so a 40-minute voice is drawn as
often as a 1-minute one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import find_peaks

from edgesep.atomic import atomic_dir
from edgesep.data.cards import audio_facts, write_card
from edgesep.data.corpus import SPLITS
from edgesep.data.mixing import active_level_db
from edgesep.data.prep import trim_silence, write_wav
from edgesep.data.realspeech import join_clips
from edgesep.data.voices import APT_PACKAGES, Voice, find_voices, read_clip, split_group
from edgesep.errors import InputError

CLIP_FRACTION = 1e-3  # a clip with more samples than this at |x| >= 0.99 counts as clipped
LEVEL_DBFS = -25.0
# Held-out speakers (docs/DATA.md): test takes both sexes, 7 languages and 4 sources; festvox-ru,
# the one long read-speech voice, stays in training.
DEFAULT_SPLITS: dict[str, tuple[str, ...]] = {
    "test": (
        "asterisk-fr_CA_f_June",
        "asterisk-it_IT_m_Carlo",
        "asterisk-es_co",
        "fillets-cs-m",
        "fillets-nl-v",
        "tuxpaint-el",
        "tuxpaint-ro",
        "kde-de",
        "kde-nl",
        "kde-pt_BR",
    ),
    "valid": ("kde-cs", "kde-da", "tuxpaint-bg", "tuxpaint-ca"),
}


def is_clipped(x: np.ndarray) -> bool:
    return bool(np.count_nonzero(np.abs(x) >= 0.99) > CLIP_FRACTION * len(x))


def level_normalize(x: np.ndarray, sample_rate: int, target_db: float = LEVEL_DBFS) -> np.ndarray:
    """Scale to ``target_db`` active level (:func:`active_level_db`), peak kept under 0.99."""
    level = active_level_db(x, sample_rate)
    if not np.isfinite(level):
        return x.astype(np.float32)
    y = x * 10 ** ((target_db - level) / 20)
    peak = float(np.abs(y).max())
    return (y * (0.99 / peak) if peak > 0.99 else y).astype(np.float32)


def median_f0(x: np.ndarray, sample_rate: int) -> float:
    """Median F0 (Hz) over voiced 40 ms frames, from the autocorrelation peak in 60-400 Hz.

    A rough figure for the card (sex and age guesses), not a pitch tracker.
    """
    frame = int(0.04 * sample_rate)
    lo, hi = int(sample_rate / 400), int(sample_rate / 60)
    n = len(x) // frame
    if n == 0:
        return float("nan")
    frames = x[: n * frame].reshape(n, frame).astype(np.float64)
    energy = (frames**2).mean(axis=1)
    f0s = []
    for f in frames[energy > 0.1 * np.median(energy[energy > 0]) if (energy > 0).any() else []]:
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[frame - 1 :]
        if ac[0] <= 0:
            continue
        peaks, _ = find_peaks(ac[lo:hi])  # local maxima only: not the low-lag shoulder
        if peaks.size == 0:
            continue
        lag = lo + int(peaks[np.argmax(ac[lo:hi][peaks])])
        if ac[lag] > 0.5 * ac[0]:  # clearly periodic: voiced
            f0s.append(sample_rate / lag)
    return float(np.median(f0s)) if f0s else float("nan")


def _split_of(voices: dict[str, Voice], held: dict[str, tuple[str, ...]]) -> dict[str, str]:
    groups = {split_group(s) for s in voices} | set(voices)
    by_group: dict[str, str] = {}
    for split, names in held.items():
        if split not in SPLITS:
            raise InputError(f"held_out: unknown split {split!r}; expected one of {SPLITS}")
        for name in names:
            if name not in groups:
                raise InputError(f"held_out: no speaker or group {name!r} among the voices found")
            if by_group.setdefault(split_group(name), split) != split:
                raise InputError(f"held_out: {name!r} is in two splits")
    return {s: by_group.get(split_group(s), "train") for s in voices}


def _clips(voice: Voice, sample_rate: int, seen: set[str]) -> tuple[list[np.ndarray], dict]:
    clips, stats = [], {"duplicates": 0, "clipped": 0, "unreadable": 0, "empty": 0}
    for path in voice.files:
        data = path.read_bytes()  # read once: hashed for duplicates, then decoded
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            stats["duplicates"] += 1
            continue
        seen.add(digest)
        try:
            x, sr = read_clip(path, data)
        except (sf.LibsndfileError, RuntimeError):
            stats["unreadable"] += 1
            continue
        if is_clipped(x):
            stats["clipped"] += 1
            continue
        if sr != sample_rate:
            x = soxr.resample(x, sr, sample_rate, "HQ").astype(np.float32)
        x = trim_silence(x, sample_rate)
        if len(x) < 0.2 * sample_rate:
            stats["empty"] += 1
            continue
        clips.append(level_normalize(x, sample_rate))
    return clips, stats


def build_voice_corpus(
    out_dir: str | Path,
    sample_rate: int = 8000,
    seed: int = 0,
    min_seconds: float = 4.0,
    held_out: dict[str, tuple[str, ...]] | None = None,
    root: str | Path = "/",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the corpus as ``out_dir/<split>/<speaker>/<utt>.wav`` plus a card; returns out_dir.

    ``held_out`` maps valid/test to speaker ids or groups (``kde-<lang>``); default
    :data:`DEFAULT_SPLITS`. Files are found under ``root`` (``/``, or a fixture mirroring it).
    """
    voices = find_voices(root)
    if not voices:
        raise FileNotFoundError(
            f"no real voices under {root}; install them with scripts/install_speech_packages.sh "
            f"(Debian: {' '.join(APT_PACKAGES)})"
        )
    split_of = _split_of(voices, DEFAULT_SPLITS if held_out is None else held_out)
    groups: dict[str, list[Voice]] = {}
    for name, voice in sorted(voices.items()):
        groups.setdefault(split_group(name), []).append(voice)
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    speakers: dict[str, dict] = {}
    with atomic_dir(out_dir) as tmp:
        for n, (name, members) in enumerate(sorted(groups.items())):
            clips: list[np.ndarray] = []
            dropped: dict[str, int] = {}
            for voice in members:
                got, stats = _clips(voice, sample_rate, seen)
                clips += got
                dropped = {k: dropped.get(k, 0) + v for k, v in stats.items()}
            clips = [clips[i] for i in rng.permutation(len(clips))]
            utts = join_clips(clips, rng, sample_rate, min_seconds)
            split = split_of[members[0].speaker]
            for k, utt in enumerate(utts):
                write_wav(tmp / split / name / f"{name}_{k:04d}.wav", utt, sample_rate)
            if utts:
                speakers[name] = {
                    "split": split,
                    "voices": [v.speaker for v in members],
                    "source": "+".join(sorted({v.source for v in members})),
                    "language": members[0].language,
                    "sex": members[0].sex,
                    "median_f0_hz": round(median_f0(np.concatenate(utts), sample_rate), 1),
                    "utterances": len(utts),
                    "minutes": round(sum(map(len, utts)) / sample_rate / 60, 2),
                    "files": sum(len(v.files) for v in members),
                    "dropped": dropped,
                }
            if progress:
                progress(n + 1, len(groups))
        write_card(
            tmp,
            {
                "kind": "utterance-corpus",
                "generator": "edgesep.data.realvoices (Debian packages of recorded voices)",
                "debian_packages": [*APT_PACKAGES, "festvox-ru (unpacked)"],
                "seed": seed,
                "sample_rate": sample_rate,
                "min_seconds": min_seconds,
                "level_dbfs": LEVEL_DBFS,
                "counts": {
                    s: sum(v["utterances"] for v in speakers.values() if v["split"] == s)
                    for s in SPLITS
                },
                "speakers_per_split": {
                    s: sorted(k for k, v in speakers.items() if v["split"] == s) for s in SPLITS
                },
                "speakers": speakers,
                **audio_facts(tmp, sample_rate),
            },
        )
    return Path(out_dir)
