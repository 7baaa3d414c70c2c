"""Fixed mixture sets on disk: WSJ0-2mix/3mix, LibriMix, WHAM! and `build_mixtures` output.

All share one split-folder shape: a mixture folder (``mix/``, or LibriMix/WHAM!'s ``mix_clean/``,
``mix_both/``, ``mix_single/``) and source folders ``s1/ s2/ [s3/]`` holding files of the same
names. :func:`find_mixture_dir` walks from a dataset's top folder to that split folder::

    wsj0-2mix/wav8k/min/tt/{mix,s1,s2}/                      WSJ0-2mix (splits tr, cv, tt)
    Libri2Mix/wav8k/min/test/{mix_clean,mix_both,s1,s2}/     LibriMix (train-100, train-360, dev,
    Libri2Mix/wav8k/min/metadata/mixture_test_mix_clean.csv            test) and its file list
    OUT/{mix,s1,s2}/ + OUT/metadata.csv                      edgesep.data.mixing.build_mixtures

When a LibriMix-style metadata CSV is present it decides which mixtures exist and in what order;
its paths may be absolute (as LibriMix writes them) or relative, and a moved dataset is still found
by file name in the expected folder.

References: Hershey et al., ICASSP 2016 (WSJ0-2mix); Cosentino et al., arXiv:2005.11262 (LibriMix);
Wichern et al., Interspeech 2019 (WHAM!).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import torch.utils.data

from edgesep.errors import InputError

__all__ = ["MixtureDataset", "MixtureDir", "find_mixture_dir"]

MixtureKind = Literal["clean", "both", "single"]

_MIX_FOLDERS: dict[str, tuple[str, ...]] = {
    "clean": ("mix", "mix_clean"),
    "both": ("mix_both",),
    "single": ("mix_single",),
}
# Our split names and both datasets' names for them; exact folder names always work too.
_SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("tr", "train-360", "train-100"),
    "tr": ("tr", "train-360", "train-100"),
    "valid": ("cv", "dev"),
    "cv": ("cv", "dev"),
    "dev": ("dev", "cv"),
    "test": ("tt", "test"),
    "tt": ("tt", "test"),
}


@dataclass(frozen=True)
class MixtureDir:
    """A resolved split folder: where the mixtures, the sources and the optional file list are."""

    root: Path
    mix_dir: Path
    source_dirs: tuple[Path, ...]
    metadata_csv: Path | None


def _mix_folder(folder: Path, mixture: str) -> Path | None:
    for name in _MIX_FOLDERS[mixture]:
        if (folder / name).is_dir():
            return folder / name
    return None


def _is_split_dir(folder: Path, mixture: str) -> bool:
    return _mix_folder(folder, mixture) is not None and (folder / "s1").is_dir()


def _subdirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir())


def _pick(folder: Path, options: list[str], wanted: str | None, what: str) -> Path:
    if wanted is not None:
        if wanted not in options:
            found = ", ".join(options)
            raise FileNotFoundError(f"{folder / wanted}: no such folder (found {found})")
        return folder / wanted
    if len(options) > 1:
        raise InputError(f"{folder}: holds {', '.join(options)}; pass {what} to choose")
    return folder / options[0]


def _pick_split(folder: Path, split: str | None, mixture: str) -> Path:
    splits = [name for name in _subdirs(folder) if _is_split_dir(folder / name, mixture)]
    if not splits:
        raise FileNotFoundError(f"{folder}: no split folders with {mixture} mixtures and s1/")
    if split is None:
        return _pick(folder, splits, None, "split")
    if split in splits:
        return folder / split
    matches = [name for name in _SPLIT_ALIASES.get(split, ()) if name in splits]
    if not matches:
        raise FileNotFoundError(f"{folder}: no split {split!r} (found {', '.join(splits)})")
    if len(matches) > 1:
        raise InputError(f"{folder}: split {split!r} is ambiguous ({', '.join(matches)}); name one")
    return folder / matches[0]


def find_mixture_dir(
    path: str | Path,
    *,
    sample_rate: int | None = None,
    mode: str | None = None,
    split: str | None = None,
    mixture: MixtureKind = "clean",
    n_src: int | None = None,
) -> MixtureDir:
    """Resolve ``path`` (a split folder, or a dataset root above it) to a :class:`MixtureDir`.

    From a root, ``wav{8,16}k/`` is chosen by ``sample_rate``, ``min/max`` by ``mode`` and the
    split folder by ``split`` ('train'/'valid'/'test' or the dataset's own names); each may be
    left out when only one choice exists. ``n_src`` defaults to the number of ``s*/`` folders.
    """
    if mixture not in _MIX_FOLDERS:
        raise InputError(f"mixture must be one of {', '.join(_MIX_FOLDERS)}, got {mixture!r}")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if not _is_split_dir(folder, mixture):
        rates = [n for n in _subdirs(folder) if re.fullmatch(r"wav\d+k", n)]
        if rates:
            want = None if sample_rate is None else f"wav{sample_rate // 1000}k"
            folder = _pick(folder, rates, want, "sample_rate")
        modes = [n for n in _subdirs(folder) if n in ("min", "max")]
        if modes and not _is_split_dir(folder, mixture):
            folder = _pick(folder, modes, mode, "mode")
        if not _is_split_dir(folder, mixture):
            folder = _pick_split(folder, split, mixture)
    mix_dir = _mix_folder(folder, mixture)
    if mix_dir is None:  # reached only with a split folder lacking this mixture kind
        raise FileNotFoundError(f"{folder}: no {' or '.join(_MIX_FOLDERS[mixture])}/ folder")
    if n_src is None:
        n_src = 0
        while (folder / f"s{n_src + 1}").is_dir():
            n_src += 1
    source_dirs = tuple(folder / f"s{i + 1}" for i in range(n_src))
    for d in source_dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no such source folder")
    csv_path: Path | None = None
    for cand in (
        folder / "metadata.csv",
        folder.parent / "metadata" / f"mixture_{folder.name}_{mix_dir.name}.csv",
    ):
        if cand.is_file():
            csv_path = cand
            break
    return MixtureDir(folder, mix_dir, source_dirs, csv_path)


@dataclass(frozen=True)
class _Entry:
    mixture_id: str
    mix: Path
    sources: tuple[Path, ...]


def _entries_from_folders(layout: MixtureDir) -> list[_Entry]:
    names = sorted(p.name for p in layout.mix_dir.glob("*.wav"))
    if not names:
        raise FileNotFoundError(f"{layout.mix_dir}: no .wav mixtures")
    wanted = set(names)
    for d in layout.source_dirs:
        have = {p.name for p in d.glob("*.wav")}
        if missing := sorted(wanted - have):
            raise FileNotFoundError(
                f"{d / missing[0]}: missing source for {layout.mix_dir.name}/{missing[0]}"
                f" ({len(missing)} missing in {d.name}/)"
            )
        if extra := sorted(have - wanted):
            raise FileNotFoundError(
                f"{layout.mix_dir / extra[0]}: missing mixture for {d.name}/{extra[0]}"
                f" ({len(extra)} extra in {d.name}/)"
            )
    return [
        _Entry(Path(n).stem, layout.mix_dir / n, tuple(d / n for d in layout.source_dirs))
        for n in names
    ]


def _resolve(raw: str, layout: MixtureDir, folder: Path, where: str) -> Path:
    path = Path(raw)
    if path.is_absolute():
        candidates = [path]
    else:
        assert layout.metadata_csv is not None
        candidates = [layout.root / path, layout.metadata_csv.parent / path]
    candidates.append(folder / path.name)  # the dataset moved since the CSV was written
    for cand in candidates:
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"{folder / path.name}: missing ({where} lists {raw})")


def _entries_from_csv(layout: MixtureDir) -> list[_Entry]:
    assert layout.metadata_csv is not None
    csv_path = layout.metadata_csv
    columns = ["mixture_path"] + [f"source_{i + 1}_path" for i in range(len(layout.source_dirs))]
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        lacking = [c for c in ["mixture_ID", *columns] if c not in (reader.fieldnames or [])]
        if lacking:
            raise InputError(f"{csv_path}: missing column(s) {', '.join(lacking)}")
        rows = list(reader)
    if not rows:
        raise InputError(f"{csv_path}: lists no mixtures")
    folders = [layout.mix_dir, *layout.source_dirs]
    entries = []
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path.name} line {line}"
        paths = [_resolve(row[c], layout, f, where) for c, f in zip(columns, folders, strict=True)]
        entries.append(_Entry(row["mixture_ID"], paths[0], tuple(paths[1:])))
    return entries


class MixtureDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Mixtures and their reference sources from a WSJ0-2mix / LibriMix / WHAM!-style folder.

    Items are ``dict(mix=float32 (T,), sources=float32 (S, T), id=str, sample_rate=int)``, plus
    ``noise=float32 (T,)`` where the split folder has a WHAM!-style ``noise/`` folder.
    With ``segment_seconds`` every item is a random crop of that length (zero-padded when the
    mixture is shorter), drawn from a generator seeded by ``(seed, epoch, index)``: the same
    item gives the same crop until :meth:`set_epoch` changes the epoch. ``sample_rate`` both
    picks ``wav8k``/``wav16k`` and is checked against every file; left out, the first mixture's
    rate is expected of all.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        split: str | None = None,
        sample_rate: int | None = None,
        mode: str | None = None,
        mixture: MixtureKind = "clean",
        n_src: int | None = None,
        segment_seconds: float | None = None,
        max_items: int | None = None,
        seed: int = 0,
    ) -> None:
        self.layout = find_mixture_dir(
            path, sample_rate=sample_rate, mode=mode, split=split, mixture=mixture, n_src=n_src
        )
        if not self.layout.source_dirs:
            raise FileNotFoundError(f"{self.layout.root}: no source folders s1/, s2/, ...")
        if segment_seconds is not None and not segment_seconds > 0:
            raise InputError(f"segment_seconds must be positive, got {segment_seconds}")
        if max_items is not None and max_items < 1:
            raise InputError(f"max_items must be at least 1, got {max_items}")
        if self.layout.metadata_csv is not None:
            entries = _entries_from_csv(self.layout)
        else:
            entries = _entries_from_folders(self.layout)
        self._entries = entries[:max_items] if max_items is not None else entries
        self.n_src = len(self.layout.source_dirs)
        self.segment_seconds = segment_seconds
        self.seed = seed
        self.epoch = 0
        first = self._entries[0].mix
        try:
            first_rate = sf.info(str(first)).samplerate
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputError(f"{first}: unreadable audio ({exc})") from None
        if sample_rate is not None and first_rate != sample_rate:
            raise InputError(f"{first}: sample rate {first_rate} Hz, expected {sample_rate} Hz")
        self.sample_rate: int = first_rate

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def ids(self) -> list[str]:
        return [e.mixture_id for e in self._entries]

    def set_epoch(self, epoch: int) -> None:
        """Draw fresh crops: crops depend on ``(seed, epoch, index)``."""
        self.epoch = epoch

    def _read(self, path: Path, frames: int | None, start: int, stop: int) -> np.ndarray:
        try:
            with sf.SoundFile(str(path)) as fh:
                if fh.samplerate != self.sample_rate:
                    raise InputError(
                        f"{path}: sample rate {fh.samplerate} Hz, expected {self.sample_rate} Hz"
                    )
                if frames is not None and fh.frames != frames:
                    raise InputError(f"{path}: {fh.frames} samples, but its mixture has {frames}")
                fh.seek(min(start, fh.frames))
                data = fh.read(max(0, stop - start), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputError(f"{path}: unreadable audio ({exc})") from None
        return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} mixtures")
        index %= len(self)
        entry = self._entries[index]
        try:
            n_frames = sf.info(str(entry.mix)).frames
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputError(f"{entry.mix}: unreadable audio ({exc})") from None
        start, stop = 0, n_frames
        if self.segment_seconds is not None:
            length = max(1, round(self.segment_seconds * self.sample_rate))
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, n_frames - length + 1)) if n_frames > length else 0
            stop = start + length
        mix = self._read(entry.mix, None, start, stop)
        sources = np.stack([self._read(p, n_frames, start, stop) for p in entry.sources])
        # WHAM!: the noise of the mixture, when the split folder has noise/ beside s1/ s2/
        noise_path = self.layout.root / "noise" / entry.mix.name
        noise = self._read(noise_path, n_frames, start, stop) if noise_path.is_file() else None
        if self.segment_seconds is not None and mix.shape[0] < stop - start:
            pad = stop - start - mix.shape[0]
            mix = np.pad(mix, (0, pad))
            sources = np.pad(sources, ((0, 0), (0, pad)))
            noise = None if noise is None else np.pad(noise, (0, pad))
        item = {
            "mix": mix,
            "sources": sources,
            "id": entry.mixture_id,
            "sample_rate": self.sample_rate,
        }
        if noise is not None:
            item["noise"] = noise
        return item
