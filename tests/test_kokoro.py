"""The Kokoro corpus builder with a stand-in for the ONNX session (the tests need no model):
eSpeak NG phonemes become tokens, timbres are convex blends, and a killed build resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep.data.corpus import load_corpus
from edgesep.data.synth import kokoro
from edgesep.data.synth.kokoro import Kokoro, generate_kokoro_corpus, make_timbres

VOCAB = {c: i + 1 for i, c in enumerate("abdefhijklmnopstuvwzðŋɑɒɔəɛɪʊʌʃʒʤʧˈˌː ,.")}


class FakeSession:
    """A tone per token, its pitch set by the style vector's first value."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def run(self, outputs: None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # as a kill mid-build
        n = feed["tokens"].shape[1] * 1200
        f0 = 100 + 100 * float(feed["style"][0, 0])
        t = np.arange(n) / kokoro.SAMPLE_RATE
        return [(0.5 * np.sin(2 * np.pi * f0 * t))[None].astype(np.float32)]


@pytest.fixture
def styles(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {f"v{i}": np.full((8, 256), i / 4, np.float32) for i in range(5)}
    monkeypatch.setattr(kokoro, "load_styles", lambda: fake)


def test_timbres_are_convex_blends_with_a_rate_and_a_language() -> None:
    timbres = make_timbres(20, ["a", "b", "c", "d", "e"], seed=0, prefix="k-")
    assert len({t.name for t in timbres}) == 20
    for t in timbres:
        assert sum(t.weights) == pytest.approx(1.0, abs=1e-3) and min(t.weights) >= 0
        assert 0.85 <= t.speed <= 1.2 and t.language in kokoro.LANGUAGES
    assert make_timbres(20, list("abcde"), 0, "k-") == timbres


def test_affricates_map_to_the_vocabulary() -> None:
    tts = Kokoro(FakeSession(), VOCAB)
    assert tts.tokens("dʒˈʌmp tʃ") == [VOCAB[c] for c in "ʤˈʌmp ʧ"]


def test_corpus_is_written_resumably_with_a_card(styles: None, tmp_path: Path) -> None:
    out = tmp_path / "kokoro8k"
    with pytest.raises(KeyboardInterrupt):
        generate_kokoro_corpus(out, {"train": 2}, 3, tts=Kokoro(FakeSession(fail_after=4), VOCAB))
    partial = tmp_path / "kokoro8k.partial"
    assert not out.exists() and len(list(partial.rglob("*.wav"))) == 4
    assert not list(partial.rglob("*.tmp.wav"))
    session = FakeSession()
    generate_kokoro_corpus(out, {"train": 2}, 3, tts=Kokoro(session, VOCAB))
    assert session.calls == 2  # only the two missing utterances
    utts = load_corpus(out, "train")
    assert len(utts) == 6 and {u.sample_rate for u in utts} == {8000}
    card = json.loads((out / "card.json").read_text())
    assert card["counts"] == {"train": 6} and len(card["speakers"]["train"]) == 2
    x, _ = sf.read(utts[0].path)
    assert 0.85 < np.abs(x).max() < 0.95
    with pytest.raises(FileExistsError):
        generate_kokoro_corpus(out, {"train": 2}, 3, tts=Kokoro(session, VOCAB))
