"""The voice catalogue and the many-voice corpus on a fake file tree mirroring the Debian paths.

The tree holds a few tone clips in every package's layout (asterisk named voices and GSM prompt
packs, klettres and ktuberling language folders, tuxpaint stamp descriptions, fillets dialogue,
festvox), so the tests need no apt package.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep.data.corpus import load_corpus
from edgesep.data.realvoices import build_voice_corpus, is_clipped, level_normalize, median_f0
from edgesep.data.voices import FESTVOX_DIR, find_voices, read_clip, split_group

SR = 8000


def _tone(
    path: Path, rng: np.random.Generator, sr: int, fmt: str = "WAV", amp: float = 0.3
) -> None:
    n = int(rng.uniform(0.4, 0.6) * sr)
    t = np.arange(n) / sr
    x = amp * np.sin(2 * np.pi * rng.uniform(120, 300) * t)
    x = np.concatenate([np.zeros(sr // 10), x, np.zeros(sr // 10)]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "GSM":
        sf.write(path, x, sr, format="RAW", subtype="GSM610")
    else:
        sf.write(path, x, sr, format=fmt, subtype="VORBIS" if fmt == "OGG" else "PCM_16")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    r = tmp_path_factory.mktemp("fs")
    ast = r / "usr/share/asterisk/sounds"
    for k in range(4):
        _tone(ast / "fr_CA_f_June" / f"p{k}.wav", rng, SR)
        _tone(ast / "it_IT_m_Carlo" / f"p{k}.wav", rng, SR)
        _tone(ast / "fr" / f"agent-{k}.gsm", rng, SR, "GSM")  # armelle
        _tone(ast / "es" / f"agent-{k}.gsm", rng, SR, "GSM")
    _tone(ast / "digits" / "fr" / "1.gsm", rng, SR, "GSM")
    (ast / "es" / "digits").mkdir()
    _tone(ast / "es" / "digits" / "1.gsm", rng, SR, "GSM")
    (ast / "digits" / "es").symlink_to(ast / "es" / "digits")  # the same files again
    for lang in ("de", "nl", "cs"):
        for k in range(3):
            _tone(r / f"usr/share/klettres/{lang}/alpha/{k}.ogg", rng, 22050, "OGG")
            _tone(r / f"usr/share/ktuberling/sounds/{lang}/{k}.wav", rng, SR)
    _tone(r / "usr/share/ktuberling/sounds/sr/a.wav", rng, SR)
    _tone(r / "usr/share/ktuberling/sounds/sr@latin/a.wav", rng, SR)  # a copy of sr: skipped
    for lang in ("el", "ro", "bg"):
        for k in range(3):
            _tone(r / f"usr/share/tuxpaint/stamps/animals/cat{k}_desc_{lang}.ogg", rng, SR, "OGG")
    _tone(r / "usr/share/tuxpaint/stamps/animals/cat0_desc.ogg", rng, SR, "OGG")  # English
    _tone(r / "usr/share/tuxpaint/stamps/animals/cat0.ogg", rng, SR, "OGG")  # a miaow, no voice
    for lang in ("cs", "nl"):
        for ch in ("m", "v", "pap"):
            for k in range(3):
                _tone(
                    r / f"usr/share/games/fillets-ng/sound/lvl/{lang}/lvl-{ch}-{k}.ogg",
                    rng,
                    SR,
                    "OGG",
                )
    fest = r / FESTVOX_DIR / "usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav"
    for k in range(3):
        _tone(fest / f"ru_{k:04d}.wav", rng, 16000)
    _tone(fest / "ru_0009.wav", rng, 16000, amp=1.5)  # clipped: dropped
    return r


def test_catalogue_finds_each_package_layout(root: Path) -> None:
    voices = find_voices(root)
    assert set(voices) == {
        "asterisk-fr_CA_f_June",
        "asterisk-it_IT_m_Carlo",
        "asterisk-fr_armelle",
        "asterisk-es_co",
        *(f"{p}-{lang}" for p in ("klettres", "ktuberling") for lang in ("de", "nl", "cs")),
        "ktuberling-sr",
        *(f"tuxpaint-{lang}" for lang in ("el", "ro", "bg", "en")),
        *(f"fillets-{lang}-{ch}" for lang in ("cs", "nl") for ch in ("m", "v")),
        "festvox-ru_nsh",
    }
    assert voices["asterisk-it_IT_m_Carlo"].sex == "m"
    assert voices["fillets-nl-m"].sex == "f" and voices["fillets-nl-v"].sex == "m"
    assert len(voices["asterisk-fr_armelle"].files) == 5  # sounds/fr and sounds/digits/fr
    assert len(voices["tuxpaint-en"].files) == 1  # the description, not the sound effect
    assert len(voices["fillets-cs-m"].files) == 3  # the minor character is left out
    x, sr = read_clip(voices["asterisk-es_co"].files[0])
    assert sr == 8000 and x.dtype == np.float32 and np.abs(x).max() > 0.1


def test_kde_folders_of_one_language_are_one_group() -> None:
    assert split_group("klettres-de") == split_group("ktuberling-de") == "kde-de"
    assert split_group("tuxpaint-de") == "tuxpaint-de"


def test_corpus_holds_out_whole_speakers_and_writes_a_card(root: Path, tmp_path: Path) -> None:
    held = {"test": ("asterisk-fr_CA_f_June", "kde-de", "fillets-nl-v"), "valid": ("tuxpaint-bg",)}
    out = build_voice_corpus(tmp_path / "v", SR, min_seconds=1.0, held_out=held, root=root)
    card = json.loads((out / "card.json").read_text())
    spk = card["speakers"]
    assert card["speakers_per_split"]["test"] == ["asterisk-fr_CA_f_June", "fillets-nl-v", "kde-de"]
    assert card["speakers_per_split"]["valid"] == ["tuxpaint-bg"]
    assert spk["kde-de"]["voices"] == ["klettres-de", "ktuberling-de"]
    assert spk["asterisk-es_co"]["dropped"]["duplicates"] == 1  # digits/es is es/digits
    assert spk["festvox-ru_nsh"]["dropped"]["clipped"] == 1
    train = {u.speaker for u in load_corpus(out, "train")}
    test = {u.speaker for u in load_corpus(out, "test")}
    assert not train & test and "kde-nl" in train and "kde-de" in test
    for u in load_corpus(out, "train"):
        assert u.sample_rate == SR
    # the same seed gives the same corpus
    again = build_voice_corpus(tmp_path / "w", SR, min_seconds=1.0, held_out=held, root=root)
    assert json.loads((again / "card.json").read_text())["content_hash"] == card["content_hash"]


def test_corpus_rejects_unknown_held_out_speakers_and_empty_trees(
    root: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no speaker or group 'nobody'"):
        build_voice_corpus(tmp_path / "x", held_out={"test": ("nobody",)}, root=root)
    with pytest.raises(ValueError, match="two splits"):
        build_voice_corpus(
            tmp_path / "x", held_out={"test": ("klettres-de",), "valid": ("kde-de",)}, root=root
        )
    with pytest.raises(FileNotFoundError, match="install_speech_packages"):
        build_voice_corpus(tmp_path / "x", root=tmp_path / "empty")
    assert not (tmp_path / "x").exists()


def test_clip_detection_level_and_f0() -> None:
    t = np.arange(SR) / SR
    x = (0.1 * np.sin(2 * np.pi * 140 * t)).astype(np.float32)
    assert not is_clipped(x)
    assert is_clipped(np.clip(x * 20, -1, 1))
    y = level_normalize(x, SR, -25.0)
    assert 20 * np.log10(np.sqrt(np.mean(y**2))) == pytest.approx(-25.0, abs=0.1)
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6)).astype(np.float32)
    assert median_f0(voiced, SR) == pytest.approx(140, rel=0.03)
