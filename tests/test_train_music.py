"""Music training: segment dataset, fixed-order thresholded SDR loss, a short run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from rich.console import Console

from edgesep.data.cards import write_card
from edgesep.data.datasets.musdb import STEMS
from edgesep.data.musicmix import MusicMixConfig, MusicMixDataset
from edgesep.train.loop import TrainConfig, train
from edgesep.train.music import thresholded_sdr_loss

SR = 8000


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MUSDB18-HQ layout: 3 train / 1 valid songs of 1.5 s stereo noise stems."""
    root = tmp_path_factory.mktemp("songs")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("valid", 1)):
        for i in range(n):
            folder = root / split / f"{split}{i}"
            folder.mkdir(parents=True)
            stems = (0.1 * rng.standard_normal((4, 2, int(1.5 * SR)))).astype(np.float32)
            sf.write(folder / "mixture.wav", stems.sum(0).T, SR, subtype="FLOAT")
            for name, x in zip(STEMS, stems, strict=True):
                sf.write(folder / f"{name}.wav", x.T, SR, subtype="FLOAT")
    write_card(root, {"kind": "music-multitrack", "seed": 0, "counts": {"train": 3, "valid": 1}})
    return root


def test_dataset_is_seeded_exact_and_reads_the_files(songs: Path) -> None:
    cfg = MusicMixConfig(root=str(songs), segment_seconds=0.5, sample_rate=SR, epoch_size=8)
    ds = MusicMixDataset(cfg, seed=3)
    mix, stems = ds[2]
    assert mix.shape == (2, SR // 2) and stems.shape == (4, 2, SR // 2)
    torch.testing.assert_close(stems.sum(0), mix)
    torch.testing.assert_close(MusicMixDataset(cfg, seed=3)[2][1], stems)
    ds.set_epoch(1)
    assert not torch.equal(ds[2][1], stems)
    # no remix, no gain, no swap: the stems are one song's files at one offset
    plain = MusicMixConfig(
        root=str(songs), segment_seconds=0.5, sample_rate=SR, epoch_size=8,
        remix=0.0, gain_db=(0.0, 0.0), swap_channels=0.0,
    )  # fmt: skip
    _, s = MusicMixDataset(plain, seed=0)[0]
    found = False
    for song in sorted((songs / "train").iterdir()):
        vocals = sf.read(song / "vocals.wav", dtype="float32")[0].T
        for start in range(vocals.shape[1] - SR // 2 + 1):
            if np.array_equal(vocals[:, start : start + SR // 2], s[0].numpy()):
                drums = sf.read(song / "drums.wav", dtype="float32")[0].T
                found = np.array_equal(drums[:, start : start + SR // 2], s[1].numpy())
                break
    assert found
    mono = MusicMixDataset(MusicMixConfig(**{**plain.__dict__, "mono": True}), seed=0)[0]
    assert mono[0].shape == (1, SR // 2) and mono[1].shape == (4, 1, SR // 2)


def test_dataset_refuses_the_wrong_rate(songs: Path) -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        MusicMixDataset(MusicMixConfig(root=str(songs), sample_rate=16000))


def test_thresholded_sdr_loss_hand_value() -> None:
    torch.manual_seed(0)
    ref = torch.randn(1, 2, 2, 100)
    mix = ref.sum(1)
    est = ref * 0.9  # error energy 1 % of each stem's
    tau = 1e-3
    e_s = ref.pow(2).sum(dim=(-2, -1))
    want = -(10 * torch.log10(e_s / (0.01 * e_s + tau * mix.pow(2).sum()))).mean()
    torch.testing.assert_close(thresholded_sdr_loss(est, ref, mix), want, rtol=1e-4, atol=1e-4)
    # a silent stem estimated as silence is bounded, not infinite
    ref[:, 1] = 0.0
    assert torch.isfinite(thresholded_sdr_loss(ref.clone(), ref, ref.sum(1)))


def test_short_music_run_writes_best_with_usdr(songs: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        model="bsrnn-test",
        model_overrides={"n_src": 4, "source_names": list(STEMS)},
        music=MusicMixConfig(
            root=str(songs), segment_seconds=0.5, sample_rate=SR, epoch_size=8, mono=True
        ),
        valid_dirs=(str(songs),),
        valid_seconds=1.0,
        out_dir=str(tmp_path / "run"),
        threads=1,
        batch_size=4,
        max_steps=3,
        eval_every=3,
    )
    best = train(cfg, console=Console(quiet=True))
    card = json.loads(best.with_suffix(".json").read_text())
    scores = card["metrics"]["valid_usdr_db"]
    assert {f"usdr_{s}" for s in STEMS} <= set(scores) and np.isfinite(scores["mean"])
    assert card["source_names"] == list(STEMS)
    assert card["data_cards"][str(songs)]["kind"] == "music-multitrack"
