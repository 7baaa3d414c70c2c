"""Seeded random sentences: English from a small grammar, other languages as pseudo-words.

eSpeak NG reads pseudo-words by each language's spelling rules, which gives speech-like phoneme
sequences in many languages without shipping any text corpus.
"""

from __future__ import annotations

import numpy as np

# fmt: off
_DET = ["the", "a", "every", "this", "that", "my", "your", "our", "one", "some"]
_ADJ = [
    "small", "quiet", "bright", "heavy", "early", "green", "cold", "sudden", "gentle", "broken",
    "famous", "narrow", "distant", "clever", "empty", "golden", "rapid", "careful", "old", "new",
]
_NOUN = [
    "river", "teacher", "garden", "window", "market", "doctor", "letter", "engine", "village",
    "kitchen", "student", "forest", "captain", "station", "painter", "bridge", "island", "signal",
    "farmer", "camera", "council", "mountain", "record", "program", "pilot", "winter", "harbor",
]
_VERB = [
    "opened", "watched", "carried", "followed", "repaired", "painted", "visited", "answered",
    "noticed", "described", "measured", "ordered", "finished", "covered", "explained", "reached",
]
_ADV = ["slowly", "today", "again", "at noon", "without a word", "before dawn", "last year",
        "with care", "twice", "in the morning", "after the rain", "by the road"]
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "tr", "st",
           "pl", "gr", "sh", "ch", "kr", "dr", "fl", "h", "j"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ei", "ia", "ue"]
_CODAS = ["", "", "", "n", "r", "s", "l", "m", "t", "k", "st", "nd"]
# fmt: on


def english_sentence(rng: np.random.Generator) -> str:
    def noun_phrase() -> str:
        words = [str(rng.choice(_DET))]
        if rng.random() < 0.6:
            words.append(str(rng.choice(_ADJ)))
        words.append(str(rng.choice(_NOUN)))
        return " ".join(words)

    parts = [noun_phrase(), str(rng.choice(_VERB)), noun_phrase()]
    if rng.random() < 0.7:
        parts.append(str(rng.choice(_ADV)))
    sentence = " ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def pseudo_sentence(rng: np.random.Generator) -> str:
    words = []
    for _ in range(int(rng.integers(4, 11))):
        n_syl = int(rng.integers(1, 4))
        words.append(
            "".join(
                str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) + str(rng.choice(_CODAS))
                for _ in range(n_syl)
            )
        )
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


def sentence_pool(n: int, seed: int, english_share: float = 0.5) -> list[str]:
    """``n`` distinct sentences (english or pseudo-word), deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        s = english_sentence(rng) if rng.random() < english_share else pseudo_sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
