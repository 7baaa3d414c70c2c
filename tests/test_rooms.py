"""Simulated rooms: the RT60 each room is drawn with shows in its response (measured by
pyroomacoustics' own Schroeder-integral estimate), the early target is the head of the full
response, and dynamic mixing puts every source of an example in one room."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from edgesep.data.dynamic import DynamicMixConfig, DynamicMixDataset, PoolConfig
from edgesep.data.rooms import RoomConfig, build_room_bank, load_room_bank, simulate_room

SR = 8000


def test_room_response_has_the_drawn_decay_and_an_early_head() -> None:
    import pyroomacoustics as pra

    cfg = RoomConfig(rt60_range=(0.3, 0.6), length_range=(4.0, 6.0))
    for seed in range(3):
        rev, early, rt60 = simulate_room(np.random.default_rng(seed), SR, 2, cfg)
        assert rev.shape == early.shape == (2, SR)
        for k in range(2):
            direct = int(np.argmax(np.abs(rev[k])))
            assert rev[k, direct] == pytest.approx(1.0, abs=1e-6)
            stop = direct + int(0.05 * SR)
            np.testing.assert_array_equal(early[k, :stop], rev[k, :stop])
            assert not early[k, stop:].any() and np.abs(rev[k, stop:]).sum() > 0
            measured = pra.experimental.measure_rt60(rev[k], fs=SR)
            # Sabine's formula under-predicts the image method's decay; within a factor of 2
            assert rt60 * 0.7 < measured < rt60 * 2.2


def test_bank_round_trip_and_checks(tmp_path) -> None:
    out = build_room_bank(tmp_path / "rooms", n_rooms=3, sample_rate=SR, seed=1)
    bank = load_room_bank(out, SR, 2)
    assert len(bank) == 3 and bank.reverberant.shape == (3, 2, SR)
    again = load_room_bank(build_room_bank(tmp_path / "again", 3, SR, seed=1), SR, 2)
    np.testing.assert_array_equal(bank.reverberant, again.reverberant)
    with pytest.raises(ValueError, match="16000"):
        load_room_bank(out, 16000, 2)
    with pytest.raises(FileNotFoundError, match="edgesep data rooms"):
        load_room_bank(tmp_path / "none", SR, 2)
    with pytest.raises(ValueError, match="n_rooms"):
        build_room_bank(tmp_path / "zero", n_rooms=0)


def test_dynamic_mix_in_rooms_targets_the_early_sources(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for spk in ("a", "b", "c"):
        x = rng.standard_normal(4 * SR).astype(np.float32) * 0.1
        (tmp_path / "corpus" / "train" / spk).mkdir(parents=True)
        sf.write(tmp_path / "corpus" / "train" / spk / f"{spk}.wav", x, SR)
    rooms = build_room_bank(tmp_path / "rooms", n_rooms=2, sample_rate=SR, seed=0)
    base = DynamicMixConfig(pools=(PoolConfig(str(tmp_path / "corpus")),), epoch_size=4)
    dry = DynamicMixDataset(base).draw(0)
    cfg = DynamicMixConfig(pools=base.pools, epoch_size=4, rooms=str(rooms), p_room=1.0)
    wet = DynamicMixDataset(cfg).draw(0)
    # the dry mixture is the sum of its sources; the reverberant one is not the sum of targets
    np.testing.assert_allclose(dry.mix[0], dry.sources.sum(0), atol=1e-6)
    residual = wet.mix[0] - wet.sources.sum(0)
    assert np.sum(residual**2) > 1e-3 * np.sum(wet.mix**2)  # the late tail
    np.testing.assert_array_equal(DynamicMixDataset(cfg).draw(0).mix, wet.mix)  # seeded
    with pytest.raises(ValueError, match="room bank"):
        DynamicMixDataset(DynamicMixConfig(pools=base.pools, p_room=0.5))
