"""The bundled model and example: present, small, documented, and still separating.

The quality floor is set about 1 dB under the SI-SNRi measured when the model was bundled
(docs/TRAINING.md), so a broken or swapped artifact fails while float noise does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fast_bss_eval
import numpy as np
import pytest
import soundfile as sf
import torch

import edgesep
from edgesep.metrics.pit import best_permutation
from edgesep.metrics.sisnr import si_snr
from edgesep.models.artifact import read_card
from edgesep.zoo import DEFAULT_MODEL, EXAMPLES_DIR, ZOO_DIR, bundled_names

EXAMPLE_SI_SNRI_FLOOR_DB = 0.2  # measured 0.97 dB when bundled


def test_bundled_model_is_small_and_documented() -> None:
    weights = ZOO_DIR / f"{DEFAULT_MODEL}.safetensors"
    assert weights.stat().st_size < 2_000_000
    card = read_card(ZOO_DIR / DEFAULT_MODEL)
    assert card["family"] == "convtasnet" and card["sample_rate"] == 8000
    for split in ("voices-test", "real-test", "synth-test"):
        assert {"si_snri", "si_snri_median", "sdri", "sdri_median"} <= set(card["metrics"][split])
    assert any("edgesep train" in cmd for cmd in card["reproduce"])
    assert card["data_cards"] and card["training"]["hardware"]


def test_bundled_model_separates_the_bundled_example() -> None:
    torch.set_num_threads(1)
    mix, sr = sf.read(EXAMPLES_DIR / "two_speakers_8k.wav", dtype="float32")
    refs = np.stack(
        [sf.read(EXAMPLES_DIR / f"two_speakers_8k_s{i}.wav", dtype="float32")[0] for i in (1, 2)]
    )
    est = edgesep.separate(mix, sr)
    assert est.shape == (2, len(mix))
    est_t, ref_t = torch.from_numpy(est)[None], torch.from_numpy(refs)[None]
    _, best = best_permutation(est_t, ref_t, si_snr)
    improvement = float(best[0] - si_snr(torch.from_numpy(mix)[None, None], ref_t).mean())
    assert improvement > EXAMPLE_SI_SNRI_FLOOR_DB


# Each bundled speech model's mean SI-SNRi on a committed fixture (4 real test mixtures), stored
# when the model was bundled by scripts/make_quality_fixture.py: the card's figures reproduce.
QUALITY_FIXTURE = Path(__file__).parent / "fixtures" / "bundled-quality"
QUALITY_TOLERANCE_DB = 0.1


def _fixture_expected() -> dict[str, Any]:
    return json.loads((QUALITY_FIXTURE / "expected.json").read_text())


def test_every_bundled_card_states_its_band() -> None:
    for name in bundled_names():
        card = read_card(ZOO_DIR / name)
        assert card["band_hz"] == [0, card["sample_rate"] // 2], name


def test_every_bundled_speech_model_has_a_current_fixture_figure() -> None:
    expected = _fixture_expected()["models"]
    speech = [n for n in bundled_names() if read_card(ZOO_DIR / n)["n_src"] == 2]
    assert sorted(expected) == sorted(speech)
    for name in speech:  # re-bundled weights need a new figure: rerun the script
        assert expected[name]["weights_sha256"] == read_card(ZOO_DIR / name)["weights_sha256"]


@pytest.mark.parametrize("name", sorted(_fixture_expected()["models"]))
def test_bundled_model_reproduces_its_fixture_figure(name: str) -> None:
    """SI-SNRi by fast_bss_eval (an independent implementation), best of the 2 orders."""
    torch.set_num_threads(1)
    model = edgesep.load_model(name)
    gains = []
    for path in sorted((QUALITY_FIXTURE / "mix").glob("*.wav")):
        mix, sr = sf.read(path, dtype="float32")
        refs = np.stack(
            [sf.read(QUALITY_FIXTURE / s / path.name, dtype="float32")[0] for s in ("s1", "s2")]
        ).astype(np.float64)
        est = model.separate(mix, sr).astype(np.float64)
        best = max(
            float(fast_bss_eval.si_sdr(refs, est[list(order)], zero_mean=True).mean())
            for order in ((0, 1), (1, 0))
        )
        base = float(
            fast_bss_eval.si_sdr(
                refs, np.stack([mix, mix]).astype(np.float64), zero_mean=True
            ).mean()
        )
        gains.append(best - base)
    stored = _fixture_expected()["models"][name]["si_snri"]
    assert float(np.mean(gains)) == pytest.approx(stored, abs=QUALITY_TOLERANCE_DB)
