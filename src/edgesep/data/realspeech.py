"""A real-speech pool from Debian packages of recorded prompts, in the utterance-corpus layout.

Sources (installed by ``scripts/install_speech_packages.sh``, never by ``make demo``):
- ``asterisk-core-sounds-{en,fr,it,ru}-wav``, ``asterisk-prompt-it-menardi-wav``: studio prompts
  of five professional voices at 8 kHz (/usr/share/asterisk/sounds/<lang>_<sex>_<Name>/).
- ``klettres-data``: letters and syllables spoken by native speakers of ~20 languages
  (/usr/share/klettres/<lang>/{alpha,syllab}/*.ogg); one folder is taken to be one speaker.
Short prompts are joined (with short pauses) into utterances of a few seconds. Whole speakers are
held out: the test split's speakers are never heard in training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from edgesep.atomic import atomic_dir
from edgesep.data.cards import audio_facts, write_card
from edgesep.data.corpus import SPLITS
from edgesep.data.prep import rms_normalize, trim_silence, write_wav
from edgesep.errors import InputError

ASTERISK_ROOT = Path("/usr/share/asterisk/sounds")
KLETTRES_ROOT = Path("/usr/share/klettres")
APT_PACKAGES = (
    "asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav "
    "asterisk-core-sounds-ru-wav asterisk-prompt-it-menardi-wav klettres-data"
)
# Held-out speakers: two asterisk voices (one female, the only male) and three klettres speakers.
DEFAULT_SPLITS = {
    "test": (
        "asterisk-fr_CA_f_June",
        "asterisk-it_IT_m_Carlo",
        "klettres-de",
        "klettres-nl",
        "klettres-pt_BR",
    ),
    "valid": ("klettres-cs", "klettres-da"),
}


def find_speakers(
    asterisk_root: Path = ASTERISK_ROOT, klettres_root: Path = KLETTRES_ROOT
) -> dict[str, list[Path]]:
    """speaker id -> sorted list of recording files."""
    out: dict[str, list[Path]] = {}
    if asterisk_root.is_dir():
        for voice in sorted(asterisk_root.iterdir()):
            # named folders only (<lang>_<f|m>_<Name>); the short ones are symlinks to them
            if voice.is_dir() and not voice.is_symlink() and voice.name.count("_") >= 2:
                out[f"asterisk-{voice.name}"] = sorted(voice.rglob("*.wav"))
    if klettres_root.is_dir():
        for lang in sorted(klettres_root.iterdir()):
            files = sorted(lang.glob("*/*.ogg"))
            if files:
                out[f"klettres-{lang.name}"] = files
    return {k: v for k, v in out.items() if v}


def _load(path: Path, sample_rate: int) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, sr, sample_rate, "HQ") if sr != sample_rate else x


def join_clips(
    clips: list[np.ndarray], rng: np.random.Generator, sample_rate: int, min_seconds: float
) -> list[np.ndarray]:
    """Concatenate clips with 0.1-0.35 s pauses into utterances of at least ``min_seconds``.

    The clips left over at the end form one more, shorter utterance if they reach half of
    ``min_seconds``, and are dropped otherwise.
    """
    out: list[np.ndarray] = []
    current: list[np.ndarray] = []
    length = 0
    for clip in clips:
        if current:
            gap = np.zeros(int(rng.uniform(0.1, 0.35) * sample_rate), dtype=np.float32)
            current.append(gap)
            length += len(gap)
        current.append(clip)
        length += len(clip)
        if length >= min_seconds * sample_rate:
            out.append(np.concatenate(current))
            current, length = [], 0
    if current and length >= 0.5 * min_seconds * sample_rate:
        out.append(np.concatenate(current))
    return out


def build_real_corpus(
    out_dir: str | Path,
    sample_rate: int = 8000,
    seed: int = 0,
    min_seconds: float = 4.0,
    held_out: dict[str, tuple[str, ...]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    asterisk_root: Path = ASTERISK_ROOT,
    klettres_root: Path = KLETTRES_ROOT,
) -> Path:
    """Write the real-speech pool as ``out_dir/<split>/<speaker>/<utt>.wav`` plus a card.

    ``held_out`` maps a split (valid, test) to the speakers it takes (default
    :data:`DEFAULT_SPLITS`); every other speaker goes to train. Utterances last at least
    ``min_seconds``, except for a speaker's last one (see :func:`join_clips`).
    """
    speakers = find_speakers(Path(asterisk_root), Path(klettres_root))
    if not speakers:
        raise FileNotFoundError(
            f"no real-speech recordings under {asterisk_root} or {klettres_root}; install them "
            f"with: apt-get install {APT_PACKAGES}"
        )
    held = DEFAULT_SPLITS if held_out is None else held_out
    split_of: dict[str, str] = {}
    for split, spks in held.items():
        if split not in SPLITS:
            raise InputError(f"held_out: unknown split {split!r}; expected one of {SPLITS}")
        for spk in spks:
            if spk not in speakers:
                raise InputError(
                    f"held_out: no speaker {spk!r} among the recordings found "
                    f"({', '.join(sorted(speakers))})"
                )
            if split_of.setdefault(spk, split) != split:
                raise InputError(
                    f"held_out: speaker {spk!r} is in both {split_of[spk]} and {split}"
                )
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(SPLITS, 0)
    with atomic_dir(out_dir) as tmp:
        for n, (speaker, files) in enumerate(sorted(speakers.items())):
            split = split_of.get(speaker, "train")
            order = rng.permutation(len(files))
            clips = [trim_silence(_load(files[i], sample_rate), sample_rate) for i in order]
            clips = [c for c in clips if len(c) > 0.05 * sample_rate]
            for k, utt in enumerate(join_clips(clips, rng, sample_rate, min_seconds)):
                write_wav(
                    tmp / split / speaker / f"{speaker}_{k:04d}.wav",
                    rms_normalize(utt),
                    sample_rate,
                )
                counts[split] += 1
            if progress:
                progress(n + 1, len(speakers))
        write_card(
            tmp,
            {
                "kind": "utterance-corpus",
                "generator": "edgesep.data.realspeech (Debian asterisk sounds + klettres-data)",
                "debian_packages": APT_PACKAGES.split(),
                "seed": seed,
                "sample_rate": sample_rate,
                "counts": counts,
                "speakers": {
                    s: sorted(p.name for p in (tmp / s).iterdir()) if (tmp / s).is_dir() else []
                    for s in SPLITS
                },
                **audio_facts(tmp, sample_rate),
            },
        )
    return Path(out_dir)
