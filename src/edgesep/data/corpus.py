"""Utterance corpora on disk: ``ROOT/<split>/<speaker>/<utterance>.wav`` plus ``ROOT/card.json``.

Both generated corpora (synthetic eSpeak NG voices, the real-speech pool) are written in this
layout, so mixture builders and dynamic mixing read them the same way. Speakers never cross splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from edgesep.errors import InputError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Utterance:
    path: Path
    speaker: str
    split: str
    n_frames: int
    sample_rate: int

    @property
    def utt_id(self) -> str:
        return self.path.stem

    def load(self) -> np.ndarray:
        """Mono float32 samples (T,)."""
        data, _ = sf.read(self.path, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.mean(axis=1))


def load_corpus(root: str | Path, split: str) -> list[Utterance]:
    """All utterances of ``split`` under ``root``, sorted for determinism."""
    base = Path(root) / split
    if not base.is_dir():
        raise FileNotFoundError(
            f"{base}: no such corpus split (expected ROOT/{split}/SPEAKER/*.wav)"
        )
    out = []
    for path in sorted(base.glob("*/*.wav")):
        info = sf.info(str(path))
        out.append(Utterance(path, path.parent.name, split, info.frames, info.samplerate))
    if not out:
        raise InputError(f"{base}: corpus split holds no .wav files")
    return out
