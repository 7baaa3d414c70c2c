"""eSpeak NG synthesis through ctypes, the voice split, and a small synthetic corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep.data.cards import content_hash, read_card
from edgesep.data.corpus import SPLITS, load_corpus
from edgesep.data.synth.espeak import ESpeak, ESpeakError
from edgesep.data.synth.speech import LANGUAGES, generate_synthetic_corpus, make_voices
from edgesep.data.synth.text import sentence_pool

SENTENCE = "We were away a year ago, where are you now?"  # 10 words, mostly voiced


@pytest.fixture(scope="module")
def espeak() -> ESpeak:
    return ESpeak()


def median_f0(x: np.ndarray, sample_rate: int, lo: float = 60.0, hi: float = 500.0) -> float:
    """Median fundamental (Hz) over clearly periodic 40 ms frames, by autocorrelation."""
    n = int(0.04 * sample_rate)
    shortest, longest = int(sample_rate / hi), int(sample_rate / lo)
    f0s = []
    for start in range(0, len(x) - n, n // 2):
        frame = x[start : start + n] - x[start : start + n].mean()
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        if ac[0] <= 0:
            continue
        lag = shortest + int(np.argmax(ac[shortest:longest]))
        if ac[lag] > 0.5 * ac[0]:
            f0s.append(sample_rate / lag)
    assert len(f0s) >= 10, "too few voiced frames to measure pitch"
    return float(np.median(f0s))


def test_synth_gives_speech_of_plausible_length(espeak: ESpeak) -> None:
    x = espeak.synth(SENTENCE)
    assert espeak.sample_rate == 22050 and x.dtype == np.float32
    assert float(np.sqrt(np.mean(x**2))) > 0.02 and float(np.abs(x).max()) <= 1.0
    seconds = len(x) / espeak.sample_rate
    assert 2.0 < seconds < 5.0  # 10 words at 175 words per minute: about 3.4 s
    slow = len(espeak.synth(SENTENCE, rate=100))
    fast = len(espeak.synth(SENTENCE, rate=300))
    assert slow > 2 * fast


def test_pitch_and_variant_change_the_voice(espeak: ESpeak) -> None:
    sr = espeak.sample_rate
    low = median_f0(espeak.synth(SENTENCE, pitch=10), sr)
    high = median_f0(espeak.synth(SENTENCE, pitch=90), sr)
    assert high > 1.4 * low
    male = median_f0(espeak.synth(SENTENCE, variant="m3"), sr)
    female = median_f0(espeak.synth(SENTENCE, variant="f2"), sr)
    assert 70 < male < 140 and female > 1.4 * male


def test_unknown_voice_raises(espeak: ESpeak) -> None:
    with pytest.raises(ESpeakError, match="'xx'"):
        espeak.synth("hello", language="xx")
    # eSpeak NG itself would fall back to plain English here
    with pytest.raises(ESpeakError, match="no_such_variant"):
        espeak.synth("hello", variant="no_such_variant")


def test_bundled_data_covers_the_corpus_languages(espeak: ESpeak) -> None:
    assert set(LANGUAGES) <= set(espeak.languages())
    assert {"m1", "m3", "f1", "f2", "klatt"} <= set(espeak.variants())


def test_voice_splits_share_no_variant() -> None:
    voices = make_voices(0)
    variants = {s: {v.variant for v in voices[s]} for s in SPLITS}
    names = {s: {v.name for v in voices[s]} for s in SPLITS}
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not variants[a] & variants[b]
        assert not names[a] & names[b]
    assert all(len(names[s]) == len(voices[s]) > 0 for s in SPLITS)  # names are unique
    assert len(variants["train"]) > len(variants["test"]) >= len(variants["valid"]) >= 1
    assert "whisper" not in set().union(*variants.values())
    for v in voices["train"]:
        assert 25 <= v.pitch < 80 and 130 <= v.rate < 200 and v.language in LANGUAGES
    assert make_voices(0) == voices
    assert {v.variant for v in make_voices(1)["test"]} != variants["test"]


def test_sentence_pool_is_distinct_and_seeded() -> None:
    pool = sentence_pool(50, seed=3)
    assert len(set(pool)) == 50 and all(s.endswith(".") for s in pool)
    assert sentence_pool(50, seed=3) == pool
    assert sentence_pool(50, seed=4) != pool


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "speech8k-synth"
    return generate_synthetic_corpus(out, {"train": 6, "valid": 2, "test": 2}, 8000, seed=5)


def test_corpus_layout_rate_and_card(corpus: Path) -> None:
    card = read_card(corpus)
    assert card["counts"] == {"train": 6, "valid": 2, "test": 2}
    assert card["sample_rate"] == 8000 and card["seed"] == 5
    files = sorted(corpus.rglob("*.wav"))
    assert card["content_hash"] == content_hash(files, corpus)
    speakers = {}
    for split in SPLITS:
        utts = load_corpus(corpus, split)
        assert len(utts) == card["counts"][split]
        for u in utts:
            assert u.path.parent.parent.name == split and u.path.stem.startswith(u.speaker)
            assert u.sample_rate == 8000 and sf.info(str(u.path)).channels == 1
            assert 1.0 < u.n_frames / 8000 < 25.0
            assert float(np.sqrt(np.mean(u.load() ** 2))) > 0.01
        speakers[split] = {u.speaker for u in utts}
        assert speakers[split] <= set(card["speakers"][split])
    assert not speakers["train"] & (speakers["valid"] | speakers["test"])
    assert not speakers["valid"] & speakers["test"]
    total = sum(sf.info(str(f)).frames for f in files) / 8000
    assert card["duration_seconds"] == pytest.approx(total, abs=0.01)


def test_corpus_is_deterministic_for_a_seed(corpus: Path, espeak: ESpeak, tmp_path: Path) -> None:
    # this process's synthesiser has spoken since: its history must not leak into the corpus
    espeak.synth("Something else entirely.", variant="klatt")
    counts = {"train": 6, "valid": 2, "test": 2}
    again = generate_synthetic_corpus(tmp_path / "again", counts, 8000, seed=5)
    assert read_card(again)["content_hash"] == read_card(corpus)["content_hash"]
    other = generate_synthetic_corpus(tmp_path / "other", {"train": 2}, 8000, seed=6)
    assert read_card(other)["content_hash"] != read_card(corpus)["content_hash"]


def test_corpus_rejects_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dev"):
        generate_synthetic_corpus(tmp_path / "c", {"dev": 2})
    assert not (tmp_path / "c").exists()
