"""The real-speech pool on a fake Debian tree (asterisk prompts, klettres letters), and join_clips.

The tree is laid out like /usr/share/asterisk/sounds and /usr/share/klettres but holds a few short
tone clips, so the tests run whether or not the Debian packages are installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep.data.cards import content_hash, read_card
from edgesep.data.corpus import SPLITS, load_corpus
from edgesep.data.realspeech import build_real_corpus, find_speakers, join_clips

SR = 8000
MIN_SECONDS = 1.0
HELD_OUT = {"test": ("asterisk-fr_CA_f_June", "klettres-de"), "valid": ("klettres-cs",)}


def _clip(path: Path, rng: np.random.Generator, sample_rate: int, fmt: str = "WAV") -> None:
    """A 0.25-0.45 s tone between 0.1 s of silence on each side (which trimming removes)."""
    n = int(rng.uniform(0.25, 0.45) * sample_rate)
    t = np.arange(n) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 400) * t)
    pad = np.zeros(int(0.1 * sample_rate))
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
    data = np.concatenate([pad, tone, pad]).astype(np.float32)
    sf.write(path, data, sample_rate, format=fmt, subtype=subtype)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("debian")
    asterisk, klettres = root / "asterisk" / "sounds", root / "klettres"
    for voice in ("en_US_f_Allison", "fr_CA_f_June", "it_IT_m_Carlo"):
        for k in range(5):
            _clip(asterisk / voice / f"prompt-{k}.wav", rng, SR)
        _clip(asterisk / voice / "digits" / "1.wav", rng, SR)
    (asterisk / "en").symlink_to(asterisk / "en_US_f_Allison")  # language alias, not a voice
    _clip(asterisk / "custom" / "beep.wav", rng, SR)  # not a <lang>_<sex>_<Name> voice
    for lang in ("cs", "de", "fr"):
        for folder in ("alpha", "syllab"):
            for k in range(3):
                _clip(klettres / lang / folder / f"{k}.ogg", rng, 22050, "OGG")
    (klettres / "icons").mkdir()
    (klettres / "de.txt").write_text("Deutsch")
    return asterisk, klettres


@pytest.fixture(scope="module")
def corpus(tree: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real") / "speech8k-real"
    asterisk, klettres = tree
    return build_real_corpus(
        out,
        SR,
        seed=0,
        min_seconds=MIN_SECONDS,
        held_out=HELD_OUT,
        asterisk_root=asterisk,
        klettres_root=klettres,
    )


def test_find_speakers_takes_named_voices_and_language_folders(tree: tuple[Path, Path]) -> None:
    speakers = find_speakers(*tree)
    assert sorted(speakers) == [
        "asterisk-en_US_f_Allison",
        "asterisk-fr_CA_f_June",
        "asterisk-it_IT_m_Carlo",
        "klettres-cs",
        "klettres-de",
        "klettres-fr",
    ]
    assert len(speakers["asterisk-en_US_f_Allison"]) == 6  # subfolders count too
    assert len(speakers["klettres-de"]) == 6  # alpha/ and syllab/


def test_held_out_speakers_land_only_in_their_split(corpus: Path) -> None:
    found = {s: {u.speaker for u in load_corpus(corpus, s)} for s in SPLITS}
    assert found["test"] == set(HELD_OUT["test"])
    assert found["valid"] == set(HELD_OUT["valid"])
    assert found["train"] == {"asterisk-en_US_f_Allison", "asterisk-it_IT_m_Carlo", "klettres-fr"}


def test_utterances_reach_the_minimum_length(corpus: Path) -> None:
    by_speaker: dict[str, list[float]] = {}
    for split in SPLITS:
        for u in load_corpus(corpus, split):
            assert u.sample_rate == SR  # klettres' 22.05 kHz clips are resampled
            by_speaker.setdefault(u.speaker, []).append(u.n_frames / SR)
    for speaker, seconds in by_speaker.items():
        # the last utterance of a speaker holds the leftover clips: at least half the minimum
        assert all(s >= MIN_SECONDS for s in seconds[:-1]), speaker
        assert seconds[-1] >= 0.5 * MIN_SECONDS, speaker
        # closed once long enough: at most one pause (0.35 s) and one clip (0.45 s) beyond
        assert max(seconds) <= MIN_SECONDS + 0.35 + 0.46, speaker
    assert sum(len(s) > 1 for s in by_speaker.values()) >= 3  # the checks above are not vacuous


def test_card_lists_speakers_counts_and_hash(corpus: Path) -> None:
    card = read_card(corpus)
    assert card["kind"] == "utterance-corpus" and card["sample_rate"] == SR and card["seed"] == 0
    assert card["speakers"] == {
        "train": ["asterisk-en_US_f_Allison", "asterisk-it_IT_m_Carlo", "klettres-fr"],
        "valid": ["klettres-cs"],
        "test": ["asterisk-fr_CA_f_June", "klettres-de"],
    }
    assert card["counts"] == {s: len(load_corpus(corpus, s)) for s in SPLITS}
    files = sorted(corpus.rglob("*.wav"))
    assert card["content_hash"] == content_hash(files, corpus)
    frames = sum(sf.info(str(f)).frames for f in files)
    assert card["duration_seconds"] == pytest.approx(frames / SR, abs=0.01)


def test_same_seed_same_corpus(tree: tuple[Path, Path], corpus: Path, tmp_path: Path) -> None:
    again = build_real_corpus(
        tmp_path / "again",
        SR,
        seed=0,
        min_seconds=MIN_SECONDS,
        held_out=HELD_OUT,
        asterisk_root=tree[0],
        klettres_root=tree[1],
    )
    assert read_card(again)["content_hash"] == read_card(corpus)["content_hash"]


def test_missing_tree_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"apt-get install .*klettres-data") as info:
        build_real_corpus(
            tmp_path / "out", asterisk_root=tmp_path / "none", klettres_root=tmp_path / "nada"
        )
    assert str(tmp_path / "none") in str(info.value)
    assert not (tmp_path / "out").exists()


def test_unknown_held_out_speaker_is_an_error(tree: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="klettres-xx"):
        build_real_corpus(
            tmp_path / "out",
            held_out={"test": ("klettres-xx",)},
            asterisk_root=tree[0],
            klettres_root=tree[1],
        )
    assert not (tmp_path / "out").exists()


def _split_runs(x: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """Non-zero runs (the clips) and the zero runs between them (the pauses)."""
    nonzero = np.flatnonzero(x != 0)
    breaks = np.flatnonzero(np.diff(nonzero) > 1)
    starts = np.r_[nonzero[0], nonzero[breaks + 1]]
    stops = np.r_[nonzero[breaks] + 1, nonzero[-1] + 1]
    gaps = [int(a - b) for a, b in zip(starts[1:], stops[:-1], strict=True)]
    return [x[a:b] for a, b in zip(starts, stops, strict=True)], gaps


def test_join_clips_concatenates_in_order_with_pauses() -> None:
    sr, min_seconds = 1000, 1.0
    lengths = [400, 300, 500, 200, 700, 100, 350, 150]
    clips = [np.full(n, k + 1, dtype=np.float32) for k, n in enumerate(lengths)]
    utts = join_clips(clips, np.random.default_rng(0), sr, min_seconds)
    recovered: list[np.ndarray] = []
    for k, utt in enumerate(utts):
        parts, gaps = _split_runs(utt)
        assert all(100 <= g <= 350 for g in gaps)
        assert len(utt) == sum(len(p) for p in parts) + sum(gaps)
        if k < len(utts) - 1:
            assert len(utt) >= min_seconds * sr
            # closed as soon as it was long enough: without its last clip it was too short
            assert len(utt) - len(parts[-1]) - (gaps[-1] if gaps else 0) < min_seconds * sr
        else:
            assert len(utt) >= 0.5 * min_seconds * sr
        recovered += parts
    n = len(recovered)
    assert n >= len(clips) - 2  # only a short remainder may be dropped
    for got, want in zip(recovered, clips[:n], strict=True):
        np.testing.assert_array_equal(got, want)


def test_join_clips_edge_cases() -> None:
    rng = np.random.default_rng(0)
    long = np.ones(1500, dtype=np.float32)
    (single,) = join_clips([long], rng, 1000, 1.0)
    np.testing.assert_array_equal(single, long)  # no pause added to a lone clip
    assert join_clips([np.ones(400, dtype=np.float32)], rng, 1000, 1.0) == []  # < half: dropped
    (kept,) = join_clips([np.ones(600, dtype=np.float32)], rng, 1000, 1.0)  # >= half: kept
    assert len(kept) == 600
    assert join_clips([], rng, 1000, 1.0) == []
    each = join_clips([np.ones(10, dtype=np.float32)] * 3, rng, 1000, 0.0)
    assert [len(u) for u in each] == [10, 10, 10]
