"""A seeded synthetic speech corpus of many eSpeak NG voices, in the utterance-corpus layout.

A voice is a (language, variant) pair with its own base pitch and speaking rate. Splits are
disjoint in voices (whole variants are held out, so test timbres are never heard in training) and
in sentences (each sentence belongs to one split).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from edgesep.data.cards import content_hash, write_card
from edgesep.data.corpus import SPLITS
from edgesep.data.prep import atomic_dir, rms_normalize, trim_silence, write_wav
from edgesep.data.synth.espeak import ESpeak
from edgesep.data.synth.text import sentence_pool

# Latin-script languages: pseudo-words in Latin letters are read by each one's own rules.
LANGUAGES = (
    "en", "fr", "de", "es", "it", "nl", "pt", "pl", "sv", "cs", "da", "fi", "hu", "ro", "sk",
    "tr", "id", "vi", "sw", "hr", "sl", "et", "lv", "lt", "eo", "ca", "cy", "af", "is", "ms",
)
# Variants that do not sound like a human talker.
_NOT_HUMAN = {"Demonic", "UniRobot", "anikaRobot", "Tweaky", "croak", "whisper", "whisperf"}
SPLIT_SHARES = {"train": 0.8, "valid": 0.08, "test": 0.12}


@dataclass(frozen=True)
class Voice:
    language: str
    variant: str
    pitch: int  # eSpeak 0..100
    rate: int  # words per minute

    @property
    def name(self) -> str:
        return re.sub(r"[^A-Za-z0-9-]+", "", f"espeak-{self.language}-{self.variant}")


def make_voices(seed: int) -> dict[str, list[Voice]]:
    """Voices per split: variants shuffled and split, each crossed with every language."""
    rng = np.random.default_rng(seed)
    variants = sorted(v for v in ESpeak().variants() if v not in _NOT_HUMAN)
    rng.shuffle(variants)
    n = len(variants)
    n_test = max(1, round(n * SPLIT_SHARES["test"]))
    n_valid = max(1, round(n * SPLIT_SHARES["valid"]))
    by_split = {
        "test": variants[:n_test],
        "valid": variants[n_test : n_test + n_valid],
        "train": variants[n_test + n_valid :],
    }
    return {
        split: [
            Voice(lang, var, int(rng.integers(25, 80)), int(rng.integers(130, 200)))
            for var in vs
            for lang in LANGUAGES
        ]
        for split, vs in by_split.items()
    }


def generate_synthetic_corpus(
    out_dir: str | Path,
    n_utterances: dict[str, int],
    sample_rate: int = 8000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``out_dir/<split>/<voice>/<utt>.wav`` and a card; returns ``out_dir``.

    ``n_utterances`` maps split -> count. Utterances join one to three sentences (about 2-8 s).
    """
    rng = np.random.default_rng(seed)
    voices = make_voices(seed)
    total = sum(n_utterances.values())
    sentences = sentence_pool(total * 3, seed + 1)
    cursor, done = 0, 0
    espeak = ESpeak()
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            for i in range(n_utterances.get(split, 0)):
                voice = voices[split][int(rng.integers(len(voices[split])))]
                n_sent = int(rng.integers(1, 4))
                text = " ".join(sentences[cursor : cursor + n_sent])
                cursor += 3  # each utterance owns 3 sentence slots: splits never share text
                audio = espeak.synth(
                    text,
                    voice.language,
                    voice.variant,
                    pitch=int(np.clip(voice.pitch + rng.integers(-6, 7), 0, 100)),
                    pitch_range=int(rng.integers(30, 90)),
                    rate=int(voice.rate * rng.uniform(0.9, 1.1)),
                )
                audio = soxr.resample(audio, espeak.sample_rate, sample_rate, "HQ")
                audio = rms_normalize(trim_silence(audio, sample_rate))
                write_wav(tmp / split / voice.name / f"{voice.name}_{split}{i:05d}.wav", audio,
                          sample_rate)
                done += 1
                if progress:
                    progress(done, total)
        files = sorted(tmp.rglob("*.wav"))
        write_card(
            tmp,
            {
                "kind": "utterance-corpus",
                "generator": "edgesep.data.synth.speech (eSpeak NG via espeakng-loader)",
                "seed": seed,
                "sample_rate": sample_rate,
                "counts": {s: n_utterances.get(s, 0) for s in SPLITS},
                "speakers": {s: sorted({v.name for v in voices[s]}) for s in SPLITS},
                "variants": {s: sorted({v.variant for v in voices[s]}) for s in SPLITS},
                "languages": list(LANGUAGES),
                "duration_seconds": round(sum(_frames(f) for f in files) / sample_rate, 2),
                "content_hash": content_hash(files, tmp),
            },
        )
    return Path(out_dir)


def _frames(path: Path) -> int:
    import soundfile as sf

    return int(sf.info(str(path)).frames)
