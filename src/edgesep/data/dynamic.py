"""Dynamic mixing: a new random pair of utterances for every training example of every epoch.

Utterances from one or more corpora (synthetic and real) are held in memory. Example ``i`` of
epoch ``e`` is drawn from ``Generator([seed, e, i])``, so a resumed run sees exactly the stream
it would have seen without the interruption.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edgesep.data.augment import AugmentConfig, augment, reverberate
from edgesep.data.corpus import Utterance, load_corpus
from edgesep.data.rooms import load_room_bank
from edgesep.errors import InputError


@dataclass(frozen=True)
class PoolConfig:
    """One corpus split drawn with relative probability ``weight``."""

    root: str
    split: str = "train"
    weight: float = 1.0


@dataclass(frozen=True)
class DynamicMixConfig:
    pools: tuple[PoolConfig, ...] = ()
    segment_seconds: float = 3.0
    n_src: int = 2
    sample_rate: int = 8000
    level_range_db: tuple[float, float] = (-5.0, 5.0)  # level of each source vs the first
    mix_rms_db: tuple[float, float] = (-35.0, -15.0)
    epoch_size: int = 4000
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # simulated rooms (edgesep.data.rooms): with probability p_room all sources of an example
    # talk in one room; the mixture is reverberant, the targets are direct path + early echoes
    rooms: str = ""
    p_room: float = 0.0


@dataclass(frozen=True)
class MixExample:
    """One drawn example: mixture (1, T), sources (S, T) and the speaker of each source."""

    mix: np.ndarray
    sources: np.ndarray
    speakers: tuple[str, ...]


class _Pool:
    def __init__(self, utts: list[Utterance]) -> None:
        self.audio = [u.load() for u in utts]
        self.speaker = np.array([u.speaker for u in utts])
        self.by_speaker = {s: np.flatnonzero(self.speaker == s) for s in sorted(set(self.speaker))}
        self.speakers = sorted(self.by_speaker)


class DynamicMixDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Items: (mix (1, T), sources (S, T)) float32 tensors, T = segment length."""

    def __init__(self, cfg: DynamicMixConfig, seed: int = 0) -> None:
        if not cfg.pools:
            raise InputError("dynamic mixing needs at least one corpus pool")
        self.cfg = cfg
        self.seed = seed
        self.epoch = 0
        self.pools = []
        for p in cfg.pools:
            utts = load_corpus(Path(p.root), p.split)
            if any(u.sample_rate != cfg.sample_rate for u in utts):
                raise InputError(f"{p.root}/{p.split}: corpus is not at {cfg.sample_rate} Hz")
            self.pools.append(_Pool(utts))
        w = np.array([p.weight for p in cfg.pools], dtype=float)
        if (w < 0).any() or not w.sum() > 0:
            raise InputError(f"pool weights must be >= 0 with a positive sum, got {w.tolist()}")
        self.weights = w / w.sum()
        n_speakers = len(
            {s for pool, wk in zip(self.pools, w, strict=True) if wk > 0 for s in pool.speakers}
        )
        if n_speakers < cfg.n_src:
            raise InputError(
                f"dynamic mixing of {cfg.n_src} sources needs as many speakers, "
                f"the pools hold {n_speakers}"
            )
        self.n_samples = round(cfg.segment_seconds * cfg.sample_rate)
        if not 0.0 <= cfg.p_room <= 1.0:
            raise InputError(f"p_room must be in [0, 1], got {cfg.p_room}")
        if cfg.p_room > 0 and not cfg.rooms:
            raise InputError("p_room > 0 needs a room bank: set data.rooms (edgesep data rooms)")
        self.rooms = (
            load_room_bank(cfg.rooms, cfg.sample_rate, cfg.n_src) if cfg.p_room > 0 else None
        )

    def __len__(self) -> int:
        return self.cfg.epoch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _source(self, rng: np.random.Generator, used: set[str]) -> tuple[np.ndarray, str]:
        weights = self.weights
        if used:
            # a pool whose speakers are all taken cannot give this source
            open_ = np.array([any(s not in used for s in p.speakers) for p in self.pools])
            if not open_.all():
                weights = np.where(open_, weights, 0.0) / weights[open_].sum()
        pool = self.pools[int(rng.choice(len(self.pools), p=weights))]
        free = [s for s in pool.speakers if s not in used]
        speaker = free[int(rng.integers(len(free)))]
        idx = pool.by_speaker[speaker]
        x = pool.audio[int(idx[int(rng.integers(len(idx)))])]
        # crop a little more than a segment first so augmentation stays cheap
        margin = int(self.n_samples * 1.25)
        if len(x) > margin:
            start = int(rng.integers(len(x) - margin + 1))
            x = x[start : start + margin]
        x = augment(x, rng, self.cfg.sample_rate, self.cfg.augment)
        out = np.zeros(self.n_samples, dtype=np.float32)
        if len(x) >= self.n_samples:
            start = int(rng.integers(len(x) - self.n_samples + 1))
            out[:] = x[start : start + self.n_samples]
        else:
            start = int(rng.integers(self.n_samples - len(x) + 1))
            out[start : start + len(x)] = x
        return out, speaker

    def draw(self, index: int) -> MixExample:
        """Example ``index`` of the current epoch, with the speakers behind its sources."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        used: set[str] = set()
        speakers = []
        targets = []
        for _ in range(self.cfg.n_src):
            x, speaker = self._source(rng, used)
            used.add(speaker)
            speakers.append(speaker)
            targets.append(x)
        heard = targets  # what the microphone picks up of each source
        if self.rooms is not None and rng.random() < self.cfg.p_room:
            r = int(rng.integers(len(self.rooms)))
            room = self.rooms
            heard = [reverberate(x, room.reverberant[r, k]) for k, x in enumerate(targets)]
            targets = [reverberate(x, room.early[r, k]) for k, x in enumerate(targets)]
        sources = []
        mics = []
        for k, (x, m) in enumerate(zip(targets, heard, strict=True)):
            rms = np.sqrt(np.mean(x**2)) + 1e-8
            level = 0.0 if k == 0 else rng.uniform(*self.cfg.level_range_db)
            sources.append(x / rms * 10 ** (level / 20))
            mics.append(m / rms * 10 ** (level / 20))
        s = np.stack(sources)
        mix = np.sum(mics, axis=0)
        gain = 10 ** (rng.uniform(*self.cfg.mix_rms_db) / 20) / (np.sqrt(np.mean(mix**2)) + 1e-8)
        peak = np.abs(mix).max() * gain
        if peak > 0.99:
            gain *= 0.99 / peak
        return MixExample(
            mix=(mix * gain)[None].astype(np.float32),
            sources=(s * gain).astype(np.float32),
            speakers=tuple(speakers),
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        example = self.draw(index)
        return torch.from_numpy(example.mix), torch.from_numpy(example.sources)
