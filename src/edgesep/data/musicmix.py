"""Training examples for music demixing: random segments of multitrack songs, optionally remixed.

Example ``i`` of epoch ``e`` is drawn from ``Generator([seed, e, i])``: a song and an offset per
stem (with probability ``remix`` each stem comes from its own random song and offset, the
"random mixing" augmentation of Uhlich et al. 2017 and Défossez et al. 2019), a gain per stem,
and a random swap of the stereo channels. The mixture is the sum of the returned stems, so the
targets stay exact. Segments are read from disk per example (``soundfile`` seeks in WAV files),
so the songs need not fit in memory.

References: Uhlich et al., "Improving music source separation based on deep neural networks
through data augmentation and network blending", ICASSP 2017; Défossez et al., "Music Source
Separation in the Waveform Domain", arXiv:1911.13254.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from edgesep.data.datasets.musdb import STEMS, MusdbTrack, find_tracks
from edgesep.errors import InputError


@dataclass(frozen=True)
class MusicMixConfig:
    root: str = ""  # MUSDB18-HQ-layout folder (e.g. edgesep data music output)
    split: str = "train"
    segment_seconds: float = 3.0
    sample_rate: int = 16000
    epoch_size: int = 2000
    remix: float = 0.5  # probability that a stem comes from another random song and offset
    gain_db: tuple[float, float] = (-4.0, 4.0)  # per-stem gain drawn uniformly
    swap_channels: float = 0.5  # probability of swapping left and right
    skip_silent: bool = True  # redraw a stem's offset (a few tries) when the segment is silent
    # one random channel per example: models that separate channels independently learn the
    # same task at half the cost per example
    mono: bool = False


class MusicMixDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Items: (mix (C, T), stems (S, C, T)) float32 tensors, T = segment length (C = 1 if mono)."""

    def __init__(self, cfg: MusicMixConfig, seed: int = 0) -> None:
        if not cfg.root:
            raise InputError("music.root is empty: name a MUSDB18-HQ-layout folder")
        self.cfg = cfg
        self.seed = seed
        self.epoch = 0
        self.tracks: list[MusdbTrack] = [
            t for t in find_tracks(cfg.root, cfg.split) if t.kind == "hq"
        ]
        if not self.tracks:
            raise InputError(f"{cfg.root}: training reads MUSDB18-HQ wav folders; none found")
        self.frames = []
        for t in self.tracks:
            info = sf.info(str(t.path / "vocals.wav"))
            if info.samplerate != cfg.sample_rate:
                raise InputError(
                    f"{t.path}: {info.samplerate} Hz, the config asks for {cfg.sample_rate} Hz"
                )
            self.frames.append(int(info.frames))
        self.n_samples = round(cfg.segment_seconds * cfg.sample_rate)
        if min(self.frames) < self.n_samples:
            raise InputError(
                f"{cfg.root}: a song is shorter than one {cfg.segment_seconds} s segment"
            )

    def __len__(self) -> int:
        return self.cfg.epoch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _read(self, track: int, stem: str, start: int) -> np.ndarray:
        path = self.tracks[track].path / f"{stem}.wav"
        data, _ = sf.read(
            str(path), start=start, frames=self.n_samples, dtype="float32", always_2d=True
        )
        return data.T

    def _stem(self, rng: np.random.Generator, stem: str, track: int, start: int) -> np.ndarray:
        tries = 4 if self.cfg.skip_silent else 1
        x = self._read(track, stem, start)
        for _ in range(tries - 1):
            if np.abs(x).max() > 1e-4:
                break
            start = int(rng.integers(self.frames[track] - self.n_samples + 1))
            x = self._read(track, stem, start)
        return x

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, self.epoch, index])
        track = int(rng.integers(len(self.tracks)))
        start = int(rng.integers(self.frames[track] - self.n_samples + 1))
        stems = []
        for stem in STEMS:
            if rng.random() < cfg.remix:
                t = int(rng.integers(len(self.tracks)))
                x = self._stem(rng, stem, t, int(rng.integers(self.frames[t] - self.n_samples + 1)))
            else:
                x = self._read(track, stem, start)
            stems.append(x * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20)))
        s = np.stack(stems)
        if rng.random() < cfg.swap_channels:
            s = s[:, ::-1]
        if cfg.mono:
            s = s[:, int(rng.integers(s.shape[1])) :][:, :1]
        peak = np.abs(s.sum(axis=0)).max()
        if peak > 0.99:  # remixing can add up past full scale
            s = s * np.float32(0.99 / peak)
        s = np.ascontiguousarray(s, dtype=np.float32)
        return torch.from_numpy(s.sum(axis=0)), torch.from_numpy(s)
