"""The bundled model and example: present, small, documented, and still separating.

The quality floor is set about 1 dB under the SI-SNRi measured when the model was bundled
(docs/TRAINING.md), so a broken or swapped artifact fails while float noise does not.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

import edgesep
from edgesep.metrics.pit import best_permutation
from edgesep.metrics.sisnr import si_snr
from edgesep.models.artifact import read_card
from edgesep.zoo import DEFAULT_MODEL, EXAMPLES_DIR, ZOO_DIR

EXAMPLE_SI_SNRI_FLOOR_DB = 0.2  # measured 1.18 dB when bundled


def test_bundled_model_is_small_and_documented() -> None:
    weights = ZOO_DIR / f"{DEFAULT_MODEL}.safetensors"
    assert weights.stat().st_size < 2_000_000
    card = read_card(ZOO_DIR / DEFAULT_MODEL)
    assert card["family"] == "convtasnet" and card["sample_rate"] == 8000
    for split in ("synth-test", "real-test"):
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
