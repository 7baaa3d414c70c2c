"""The bundled 4-stem music model: present, small, documented, and splitting the example song."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import edgesep
from edgesep.models.artifact import read_card
from edgesep.zoo import EXAMPLES_DIR, ZOO_DIR

NAME = "music-4stem-16k"
STEMS = ("vocals", "drums", "bass", "other")

pytestmark = pytest.mark.skipif(
    not (ZOO_DIR / f"{NAME}.safetensors").is_file(), reason="music model not bundled"
)


def test_music_model_is_small_and_documented() -> None:
    assert (ZOO_DIR / f"{NAME}.safetensors").stat().st_size < 5_000_000
    card = read_card(ZOO_DIR / NAME)
    assert tuple(card["source_names"]) == STEMS and card["sample_rate"] == 16000
    test = card["metrics"]["music16k-test"]
    for kind in ("usdr", "csdr"):
        assert set(STEMS) | {"mean"} <= set(test[kind])
    assert {"mixture", "oracle-irm"} <= set(test["references"])
    assert len(card["metrics"]["candidates"]) == 2
    assert any("edgesep train" in cmd for cmd in card["reproduce"])
    assert card["data_cards"] and card["training"]["hardware"]


def _centroid_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x.mean(axis=0))) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1 / sr)
    return float((spec * f).sum() / spec.sum())


def test_music_model_splits_the_example_song() -> None:
    torch.set_num_threads(1)
    mix, sr = sf.read(EXAMPLES_DIR / "song_16k.wav", dtype="float32")
    model = edgesep.load_model(NAME)
    est = model.separate(mix.T, sr, rescale=False)
    assert est.shape == (4, 2, len(mix))
    centroid = {s: _centroid_hz(e, sr) for s, e in zip(STEMS, est, strict=True)}
    # the bass stem sits lowest in frequency; every stem carries some of the song
    assert centroid["bass"] < min(centroid[s] for s in ("vocals", "drums", "other"))
    energy = (est.astype(np.float64) ** 2).sum(axis=(1, 2)) / (mix.astype(np.float64) ** 2).sum()
    assert (energy > 0.01).all()
