"""A tiny corpus of harmonic-tone "speakers" and its validation mixtures, built in a second.

For smoke runs of the training command (``configs/train/smoke-8k.yaml``, the two-process DDP
test): each speaker is a harmonic tone with its own fundamental plus a little noise, so nothing
needs a speech synthesiser or a Debian package, and the corpus has a card like the real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from edgesep.data.cards import content_hash, write_card
from edgesep.data.corpus import load_corpus
from edgesep.data.mixing import build_mixtures

F0 = {"train": (110.0, 170.0, 260.0), "valid": (130.0, 210.0)}


def write_tone_corpus(root: str | Path, sample_rate: int = 8000, seed: int = 0) -> Path:
    """ROOT/<split>/<speaker>/<utt>.wav of harmonic tones (0.4-0.6 s) plus a data card."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, f0s in F0.items():
        for k, f0 in enumerate(f0s):
            for u in range(2):
                n = int(sample_rate * rng.uniform(0.4, 0.6))
                t = np.arange(n) / sample_rate
                x = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in (1, 2, 3))
                x = 0.2 * x + 0.01 * rng.standard_normal(n)
                path = root / split / f"spk{split}{k}" / f"spk{split}{k}_{u}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, x.astype(np.float32), sample_rate, subtype="PCM_16")
    files = sorted(root.rglob("*.wav"))
    write_card(
        root, {"kind": "utterance-corpus", "seed": seed, "content_hash": content_hash(files, root)}
    )
    return root


def build_smoke_data(out_dir: str | Path, sample_rate: int = 8000, seed: int = 0) -> Path:
    """``OUT/corpus`` (tone speakers) and ``OUT/valid`` (2 mixtures of the valid speakers)."""
    out = Path(out_dir)
    corpus = write_tone_corpus(out / "corpus", sample_rate, seed)
    build_mixtures(load_corpus(corpus, "valid"), out / "valid", 2, sample_rate, seed=seed)
    return out
