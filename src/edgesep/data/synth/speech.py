"""A seeded synthetic speech corpus of many eSpeak NG voices, in the utterance-corpus layout.

A voice is a (language, variant) pair with its own base pitch and speaking rate. Splits are
disjoint in voices (whole variants are held out, so test timbres are never heard in training) and
in sentences (each sentence belongs to one split).
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from edgesep.atomic import atomic_dir
from edgesep.data.cards import audio_facts, write_card
from edgesep.data.corpus import SPLITS
from edgesep.data.prep import rms_normalize, trim_silence, write_wav
from edgesep.data.synth.espeak import ESpeak
from edgesep.data.synth.text import sentence_pool
from edgesep.errors import InputError

# Latin-script languages: pseudo-words in Latin letters are read by each one's own rules.
# fmt: off
LANGUAGES = (
    "en", "fr", "de", "es", "it", "nl", "pt", "pl", "sv", "cs", "da", "fi", "hu", "ro", "sk",
    "tr", "id", "vi", "sw", "hr", "sl", "et", "lv", "lt", "eo", "ca", "cy", "af", "is", "ms",
)
# fmt: on
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


@dataclass(frozen=True)
class _Job:
    """One utterance to synthesise, with every random choice already made."""

    path: Path
    text: str
    voice: Voice
    pitch: int
    pitch_range: int
    rate: int
    seed: int
    sample_rate: int


def _render(job: _Job) -> int:
    """Synthesise, resample, trim, normalise and write one utterance; returns its length."""
    espeak = ESpeak()
    audio = espeak.synth(
        job.text,
        job.voice.language,
        job.voice.variant,
        pitch=job.pitch,
        pitch_range=job.pitch_range,
        rate=job.rate,
        seed=job.seed,
    )
    audio = soxr.resample(audio, espeak.sample_rate, job.sample_rate, "HQ")
    audio = rms_normalize(trim_silence(audio, job.sample_rate))
    write_wav(job.path, audio, job.sample_rate)
    return len(audio)


def _plan(
    root: Path, n_utterances: dict[str, int], sample_rate: int, seed: int
) -> tuple[list[_Job], dict[str, list[Voice]]]:
    rng = np.random.default_rng(seed)
    voices = make_voices(seed)
    total = sum(n_utterances.values())
    sentences = sentence_pool(total * 3, seed + 1)
    cursor = 0
    jobs = []
    for k, split in enumerate(SPLITS):
        for i in range(n_utterances.get(split, 0)):
            voice = voices[split][int(rng.integers(len(voices[split])))]
            n_sent = int(rng.integers(1, 4))
            text = " ".join(sentences[cursor : cursor + n_sent])
            cursor += 3  # each utterance owns 3 sentence slots: splits never share text
            jobs.append(
                _Job(
                    path=root / split / voice.name / f"{voice.name}_{split}{i:05d}.wav",
                    text=text,
                    voice=voice,
                    pitch=int(np.clip(voice.pitch + rng.integers(-6, 7), 0, 100)),
                    pitch_range=int(rng.integers(30, 90)),
                    rate=int(voice.rate * rng.uniform(0.9, 1.1)),
                    # eSpeak's noise seed, derived without drawing from ``rng``
                    seed=int(np.random.SeedSequence([seed, k, i]).generate_state(1)[0]),
                    sample_rate=sample_rate,
                )
            )
    return jobs, voices


def generate_synthetic_corpus(
    out_dir: str | Path,
    n_utterances: dict[str, int],
    sample_rate: int = 8000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``out_dir/<split>/<voice>/<utt>.wav`` and a card; returns ``out_dir``.

    ``n_utterances`` maps split -> count. Utterances join one to three sentences (typically 3-15 s).
    The same arguments always give the same files: eSpeak NG carries state from one utterance to
    the next (see :mod:`edgesep.data.synth.espeak`), so the utterances are synthesised in order
    by one fresh worker process rather than by this process's synthesiser, whose history is
    unknown.
    """
    unknown = set(n_utterances) - set(SPLITS)
    if unknown:
        raise InputError(f"unknown split(s) {sorted(unknown)}; expected some of {list(SPLITS)}")
    if any(n < 0 for n in n_utterances.values()):
        raise InputError(f"utterance counts must not be negative, got {n_utterances}")
    total = sum(n_utterances.values())
    with atomic_dir(out_dir) as tmp:
        jobs, voices = _plan(tmp, n_utterances, sample_rate, seed)
        spawn = multiprocessing.get_context("spawn")  # fork would copy this process's history
        pool = ProcessPoolExecutor(max_workers=1, mp_context=spawn)
        try:
            # one worker takes the jobs in submission order
            futures = [pool.submit(_render, job) for job in jobs]
            for done, future in enumerate(futures, start=1):
                future.result()
                if progress:
                    progress(done, total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
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
                **audio_facts(tmp, sample_rate),
            },
        )
    return Path(out_dir)
