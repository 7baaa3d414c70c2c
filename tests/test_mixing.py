"""build_mixtures and data cards on a tiny synthetic corpus (4 speakers, 16 kHz, < 1 s each)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep import __version__
from edgesep.data import mixing
from edgesep.data.cards import content_hash, read_card, write_card
from edgesep.data.corpus import Utterance, load_corpus
from edgesep.data.datasets import MixtureDataset
from edgesep.data.mixing import active_level_db, build_mixtures

SR_IN = 16000
SR_OUT = 8000


@pytest.fixture(scope="module")
def utts(tmp_path_factory: pytest.TempPathFactory) -> list[Utterance]:
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(123)
    for s in range(4):
        for k in range(3):
            n = 2 * int(rng.integers(2400, 6000))  # even, so 16k -> 8k halves exactly
            t = np.arange(n) / SR_IN
            x = 0.3 * np.sin(2 * np.pi * (150 + 60 * s + 20 * k) * t)
            x += 0.02 * rng.standard_normal(n)
            x *= 10 ** (rng.uniform(-12, 0) / 20)  # raw levels differ; the mixer must even them out
            path = root / "train" / f"spk{s}" / f"s{s}u{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x.astype(np.float32), SR_IN, subtype="PCM_16")
    (root / "card.json").write_text("{}")
    return load_corpus(root, "train")


def _read(path: Path) -> np.ndarray:
    data, sr = sf.read(path, dtype="float32")
    assert sr == SR_OUT
    return data


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_layout_counts_and_sums(utts: list[Utterance], tmp_path: Path, mode: str) -> None:
    out = build_mixtures(utts, tmp_path / "mixes", 6, sample_rate=SR_OUT, mode=mode, seed=1)  # type: ignore[arg-type]
    assert sorted(p.name for p in out.iterdir()) == [
        "card.json", "metadata.csv", "mix", "mixlist.csv", "s1", "s2"
    ]  # fmt: skip
    names = sorted(p.name for p in (out / "mix").iterdir())
    assert len(names) == 6
    for folder in ("s1", "s2"):
        assert sorted(p.name for p in (out / folder).iterdir()) == names
    header, meta = _rows(out / "metadata.csv")
    assert header == ["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "length"]
    _, plan = _rows(out / "mixlist.csv")
    frames = {f"train/{u.speaker}/{u.path.name}": u.n_frames // 2 for u in utts}
    for row, info in zip(meta, plan, strict=True):
        assert row["mixture_ID"] == info["mixture_ID"]
        mix, s1, s2 = (
            _read(out / row[k]) for k in ("mixture_path", "source_1_path", "source_2_path")
        )
        assert sf.info(out / row["mixture_path"]).subtype == "PCM_16"
        assert len(mix) == len(s1) == len(s2) == int(row["length"])
        np.testing.assert_array_equal(mix, s1 + s2)  # exact: the mix is the integer sum
        lengths = [frames[info["source_1_utterance"]], frames[info["source_2_utterance"]]]
        assert len(mix) == (min(lengths) if mode == "min" else max(lengths))
        assert info["source_1_speaker"] != info["source_2_speaker"]
        g1, g2 = float(info["source_1_gain_db"]), float(info["source_2_gain_db"])
        assert 0.0 <= g1 - g2 <= 5.0 and g1 == pytest.approx(-g2)
        measured = active_level_db(s1, SR_OUT) - active_level_db(s2, SR_OUT)
        assert measured == pytest.approx(g1 - g2, abs=0.05)
        stem1, stem2 = Path(info["source_1_utterance"]).stem, Path(info["source_2_utterance"]).stem
        assert row["mixture_ID"] == f"{stem1}_{g1:.4f}_{stem2}_{g2:.4f}"
        assert np.abs(mix).max() <= mixing.PEAK_LIMIT + 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["mixes"]  # no temp folder left behind


def test_card_fields_and_hash(utts: list[Utterance], tmp_path: Path) -> None:
    out = build_mixtures(utts, tmp_path / "m", 4, level_range_db=(1.0, 3.0), seed=7)
    card = read_card(out)
    assert card["seed"] == 7 and card["created_by"] == f"edgesep {__version__}"
    assert card["counts"]["mixtures"] == 4 and card["counts"]["speakers"] == 4
    assert card["counts"]["utterances"] == len(utts)
    (source,) = card["sources"]
    assert source["split"] == "train" and source["speakers"] == ["spk0", "spk1", "spk2", "spk3"]
    assert Path(source["root"]) == utts[0].path.parent.parent.parent
    params = card["params"]
    assert params["mode"] == "min" and params["sample_rate"] == SR_OUT
    assert params["level_range_db"] == [1.0, 3.0] and params["n_src"] == 2
    _, meta = _rows(out / "metadata.csv")
    assert card["total_duration_seconds"] == pytest.approx(
        sum(int(r["length"]) for r in meta) / SR_OUT
    )
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "card.json"]
    assert card["content_hash"] == content_hash(files, root=out)


def test_deterministic_per_seed(utts: list[Utterance], tmp_path: Path) -> None:
    a = build_mixtures(utts, tmp_path / "a", 4, seed=3)
    b = build_mixtures(list(reversed(utts)), tmp_path / "b", 4, seed=3)  # input order is irrelevant
    c = build_mixtures(utts, tmp_path / "c", 4, seed=4)
    assert read_card(a)["content_hash"] == read_card(b)["content_hash"]
    for p in a.rglob("*.wav"):
        assert p.read_bytes() == (b / p.relative_to(a)).read_bytes()
    assert read_card(a)["content_hash"] != read_card(c)["content_hash"]
    assert {p.name for p in (a / "mix").iterdir()} != {p.name for p in (c / "mix").iterdir()}


def test_refuses_overwrite_and_replaces_when_asked(utts: list[Utterance], tmp_path: Path) -> None:
    out = build_mixtures(utts, tmp_path / "m", 2, seed=0)
    with pytest.raises(FileExistsError, match="not empty"):
        build_mixtures(utts, out, 2, seed=1)
    assert read_card(out)["seed"] == 0
    build_mixtures(utts, out, 3, seed=1, overwrite=True)
    assert read_card(out)["seed"] == 1 and len(list((out / "mix").iterdir())) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    (tmp_path / "empty").mkdir()
    build_mixtures(utts, tmp_path / "empty", 1)  # an empty folder is fine


def test_interrupted_build_leaves_nothing(utts: list[Utterance], tmp_path: Path) -> None:
    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_mixtures(utts, tmp_path / "m", 4, progress=stop)
    assert list(tmp_path.iterdir()) == []


def test_peak_scaling_three_sources(
    utts: list[Utterance], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mixing, "REFERENCE_LEVEL_DBFS", -3.0)  # loud enough to need scaling
    out = build_mixtures(utts, tmp_path / "m", 3, n_src=3, mode="max")
    header, meta = _rows(out / "metadata.csv")
    assert header[2:5] == ["source_1_path", "source_2_path", "source_3_path"]
    _, plan = _rows(out / "mixlist.csv")
    assert all(float(r["scale"]) < 1.0 for r in plan)
    for row, info in zip(meta, plan, strict=True):
        mix = _read(out / row["mixture_path"])
        srcs = [_read(out / row[f"source_{i}_path"]) for i in (1, 2, 3)]
        np.testing.assert_array_equal(mix, srcs[0] + srcs[1] + srcs[2])
        assert np.abs(mix).max() <= mixing.PEAK_LIMIT + 1e-4
        assert len({info[f"source_{i}_speaker"] for i in (1, 2, 3)}) == 3


def test_bad_arguments(utts: list[Utterance], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        build_mixtures(utts, tmp_path / "m", 1, mode="mid")  # type: ignore[arg-type]
    one_speaker = [u for u in utts if u.speaker == "spk0"]
    with pytest.raises(ValueError, match="speakers"):
        build_mixtures(one_speaker, tmp_path / "m", 1)
    with pytest.raises(ValueError, match="level_range_db"):
        build_mixtures(utts, tmp_path / "m", 1, level_range_db=(5.0, 0.0))
    assert list(tmp_path.iterdir()) == []


def test_round_trip_through_dataset(utts: list[Utterance], tmp_path: Path) -> None:
    out = build_mixtures(utts, tmp_path / "m", 3, seed=2)
    ds = MixtureDataset(out)
    assert ds.layout.metadata_csv == out / "metadata.csv" and len(ds) == 3
    _, meta = _rows(out / "metadata.csv")
    assert ds.ids == [r["mixture_ID"] for r in meta]
    item = ds[0]
    np.testing.assert_array_equal(item["mix"], item["sources"].sum(axis=0))


def test_cards_helpers(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"12")
    (tmp_path / "y.bin").write_bytes(b"3")
    files = [tmp_path / "y.bin", tmp_path / "a" / "x.bin"]
    h = content_hash(files, root=tmp_path)
    assert h == content_hash(list(reversed(files)), root=tmp_path) == content_hash(files)
    (tmp_path / "a" / "x.bin").write_bytes(b"13")
    assert content_hash(files, root=tmp_path) != h
    card = {"seed": 1}
    path = write_card(tmp_path, card)
    assert card == {"seed": 1} and json.loads(path.read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "card.json", "y.bin"]
    (tmp_path / "card.json").write_text("[1]")
    with pytest.raises(ValueError, match=r"card\.json: data card must be"):
        read_card(tmp_path)
    with pytest.raises(FileNotFoundError, match="no data card"):
        read_card(tmp_path / "a")
