"""MixtureDataset and find_mixture_dir on tiny fixtures in the WSJ0-2mix and LibriMix layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from edgesep.data.datasets import MixtureDataset, find_mixture_dir

SR = 8000
LENGTHS = {"a": 4000, "b": 3200, "c": 4800}


def _write_split(folder: Path, mix_names: tuple[str, ...], sr: int = SR, seed: int = 0) -> None:
    """``folder/{mix_names...,s1,s2}/{a,b,c}.wav``: noise sources, each mixture their sum."""
    rng = np.random.default_rng(seed)
    for name, n in LENGTHS.items():
        s = (0.1 * rng.standard_normal((2, n))).astype(np.float32)
        noise = (0.05 * rng.standard_normal(n)).astype(np.float32)
        signals = {"s1": s[0], "s2": s[1], "mix": s.sum(0), "mix_clean": s.sum(0)}
        signals["mix_both"] = s.sum(0) + noise
        for sub in ("s1", "s2", *mix_names):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            sf.write(folder / sub / f"{name}.wav", signals[sub], sr, subtype="FLOAT")


@pytest.fixture
def wsj(tmp_path: Path) -> Path:
    root = tmp_path / "wsj0-2mix"
    _write_split(root / "wav8k" / "min" / "tt", ("mix",))
    _write_split(root / "wav8k" / "min" / "cv", ("mix",), seed=1)
    _write_split(root / "wav16k" / "min" / "tt", ("mix",), sr=16000)
    return root


@pytest.fixture
def libri(tmp_path: Path) -> Path:
    root = tmp_path / "Libri2Mix"
    base = root / "wav8k" / "min"
    _write_split(base / "test", ("mix_clean", "mix_both"))
    (base / "metadata").mkdir()
    stale = "/gone/Libri2Mix/wav8k/min/test"  # LibriMix writes absolute paths; the set was moved
    with (base / "metadata" / "mixture_test_mix_clean.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "length"])
        for name in ("c", "a"):  # a subset, in the CSV's own order
            w.writerow([name, *(f"{stale}/{d}/{name}.wav" for d in ("mix_clean", "s1", "s2"))])
    return root


def test_wsj0_2mix_root_and_split_folder(wsj: Path) -> None:
    ds = MixtureDataset(wsj, sample_rate=8000, mode="min", split="tt")
    assert ds.layout.root == wsj / "wav8k" / "min" / "tt" and ds.layout.metadata_csv is None
    assert len(ds) == 3 and ds.ids == ["a", "b", "c"] and ds.sample_rate == SR and ds.n_src == 2
    for i, name in enumerate(ds.ids):
        item = ds[i]
        assert item["id"] == name and item["sample_rate"] == SR
        assert item["mix"].dtype == np.float32 and item["mix"].shape == (LENGTHS[name],)
        assert item["sources"].dtype == np.float32 and item["sources"].shape == (2, LENGTHS[name])
        np.testing.assert_allclose(item["mix"], item["sources"].sum(0), atol=1e-6)
    assert MixtureDataset(wsj / "wav8k" / "min" / "tt").ids == ds.ids
    assert find_mixture_dir(wsj, sample_rate=8000, split="test").root == ds.layout.root  # alias
    assert find_mixture_dir(wsj / "wav8k", split="valid").root.name == "cv"
    assert MixtureDataset(wsj, sample_rate=16000, split="tt").sample_rate == 16000
    assert len(MixtureDataset(wsj, sample_rate=8000, split="tt", max_items=2)) == 2


def test_wsj0_2mix_needs_choices(wsj: Path) -> None:
    with pytest.raises(ValueError, match="pass sample_rate"):
        find_mixture_dir(wsj, split="tt")
    with pytest.raises(ValueError, match="pass split"):
        find_mixture_dir(wsj, sample_rate=8000)
    with pytest.raises(FileNotFoundError, match="max"):
        find_mixture_dir(wsj, sample_rate=8000, mode="max", split="tt")
    with pytest.raises(FileNotFoundError, match="no split 'train'"):
        find_mixture_dir(wsj, sample_rate=8000, split="train")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        MixtureDataset(wsj / "nowhere")


def test_mismatched_file_sets_name_the_file(wsj: Path) -> None:
    split = wsj / "wav8k" / "min" / "tt"
    (split / "s2" / "b.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"s2/b\.wav"):
        MixtureDataset(split)
    (split / "mix" / "b.wav").unlink()
    (split / "s1" / "b.wav").rename(split / "s1" / "z.wav")
    with pytest.raises(FileNotFoundError, match=r"mix/z\.wav"):
        MixtureDataset(split)


def test_sample_rate_mismatch(wsj: Path) -> None:
    split = wsj / "wav8k" / "min" / "tt"
    with pytest.raises(ValueError, match=r"a\.wav: sample rate 8000 Hz, expected 16000"):
        MixtureDataset(split, sample_rate=16000)
    sf.write(split / "s2" / "c.wav", np.zeros(9600, np.float32), 16000)
    ds = MixtureDataset(split)
    ds[0]
    with pytest.raises(ValueError, match=r"s2/c\.wav: sample rate 16000 Hz, expected 8000"):
        ds[2]


def test_librimix_csv(libri: Path) -> None:
    ds = MixtureDataset(libri, sample_rate=8000, mode="min", split="test")
    base = libri / "wav8k" / "min"
    assert ds.layout.mix_dir == base / "test" / "mix_clean"
    assert ds.layout.metadata_csv == base / "metadata" / "mixture_test_mix_clean.csv"
    assert ds.ids == ["c", "a"]
    item = ds[1]
    assert item["id"] == "a" and item["mix"].shape == (4000,) and item["sources"].shape == (2, 4000)
    np.testing.assert_allclose(item["mix"], item["sources"].sum(0), atol=1e-6)
    both = MixtureDataset(libri, split="test", mixture="both")
    assert both.layout.mix_dir.name == "mix_both" and both.layout.metadata_csv is None
    assert both.ids == ["a", "b", "c"]
    assert not np.allclose(both[0]["mix"], both[0]["sources"].sum(0), atol=1e-3)
    (base / "test" / "s2" / "c.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"s2/c\.wav: missing \(mixture_test_mix_clean"):
        MixtureDataset(libri, split="test")


def test_segments_are_seeded_crops(wsj: Path) -> None:
    kw = {"sample_rate": 8000, "split": "tt", "segment_seconds": 0.1}
    ds = MixtureDataset(wsj, seed=5, **kw)  # type: ignore[arg-type]
    full = MixtureDataset(wsj, **kw | {"segment_seconds": None})  # type: ignore[arg-type]
    for i in range(len(ds)):
        crop, whole = ds[i], full[i]
        assert crop["mix"].shape == (800,) and crop["sources"].shape == (2, 800)
        windows = np.lib.stride_tricks.sliding_window_view(whole["mix"], 800)
        (starts,) = np.nonzero((windows == crop["mix"]).all(axis=1))
        assert len(starts) == 1  # the crop is a slice of the mixture...
        np.testing.assert_array_equal(crop["sources"], whole["sources"][:, starts[0] :][:, :800])
        np.testing.assert_array_equal(crop["mix"], ds[i]["mix"])  # ...and the same every time
    again = MixtureDataset(wsj, seed=5, **kw)  # type: ignore[arg-type]
    other = MixtureDataset(wsj, seed=6, **kw)  # type: ignore[arg-type]
    assert all(np.array_equal(ds[i]["mix"], again[i]["mix"]) for i in range(3))
    assert not all(np.array_equal(ds[i]["mix"], other[i]["mix"]) for i in range(3))
    ds.set_epoch(1)
    assert not all(np.array_equal(ds[i]["mix"], again[i]["mix"]) for i in range(3))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["mix"].shape == (3, 800) and batch["sources"].shape == (3, 2, 800)


def test_short_items_are_padded(wsj: Path) -> None:
    ds = MixtureDataset(wsj, sample_rate=8000, split="tt", segment_seconds=1.0)
    item = ds[1]  # "b" has 3200 samples
    assert item["mix"].shape == (8000,) and item["sources"].shape == (2, 8000)
    assert not item["mix"][3200:].any() and item["mix"][:3200].any()
