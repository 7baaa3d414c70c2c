"""Simulated rooms: a seeded bank of shoebox impulse responses, one microphone, n sources.

Each room has random dimensions, an RT60 drawn from ``rt60_range`` (wall absorption and image
order by Sabine's formula), a microphone and ``n_src`` talkers at random positions, all
``min_wall`` from the walls. The image-source method of pyroomacoustics gives each source's
impulse response to the microphone.

Training target (WHAMR!'s convention is the dry source; ours differs, on purpose): the **direct
path plus early reflections** of the first ``early_ms`` after the direct sound. The model learns
to separate, not to dereverberate, and early reflections are part of what a listener hears as the
voice. ``early`` holds those responses; ``reverberant`` the full ones that make the mixture.

The bank is written once (``edgesep data rooms``) as ``rooms.npz`` plus a card, so training
draws rooms at no simulation cost and a resumed run sees the same rooms.

References: Allen & Berkley, "Image method for efficiently simulating small-room acoustics",
JASA 1979; Scheibler et al., "Pyroomacoustics", ICASSP 2018; Maciejewski et al., "WHAMR!", ICASSP
2020.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgesep.atomic import atomic_dir
from edgesep.data.cards import content_hash, read_card, write_card
from edgesep.errors import InputError


@dataclass(frozen=True)
class RoomConfig:
    rt60_range: tuple[float, float] = (0.1, 0.8)
    length_range: tuple[float, float] = (3.0, 10.0)  # metres; width is 0.6-1.0x the length
    height_range: tuple[float, float] = (2.4, 3.5)
    distance_range: tuple[float, float] = (0.5, 3.0)  # talker to microphone
    min_wall: float = 0.5
    early_ms: float = 50.0
    max_seconds: float = 1.0  # responses are cut here (RT60 <= 0.8 s: the tail is < -60 dB)


@dataclass(frozen=True)
class RoomBank:
    """``reverberant`` and ``early``: (n_rooms, n_src, L) float32; ``rt60``: (n_rooms,)."""

    reverberant: np.ndarray
    early: np.ndarray
    rt60: np.ndarray
    sample_rate: int

    def __len__(self) -> int:
        return len(self.rt60)


def _position(rng: np.random.Generator, dims: np.ndarray, margin: float) -> np.ndarray:
    return rng.uniform(margin, dims - margin)


def simulate_room(
    rng: np.random.Generator, sample_rate: int, n_src: int = 2, cfg: RoomConfig | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """(reverberant (S, L), early (S, L), rt60) of one random room; L = ``max_seconds``."""
    import pyroomacoustics as pra

    cfg = cfg or RoomConfig()
    rt60 = float(rng.uniform(*cfg.rt60_range))
    for _ in range(100):  # a short RT60 cannot be had in a large room: draw the room again
        length = rng.uniform(*cfg.length_range)
        dims = np.array([length, length * rng.uniform(0.6, 1.0), rng.uniform(*cfg.height_range)])
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
            break
        except ValueError:
            continue
    else:
        raise InputError(f"no room in {cfg.length_range} m reaches RT60 {rt60:.2f} s")
    room = pra.ShoeBox(
        dims, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order
    )
    mic = _position(rng, dims, cfg.min_wall)
    mic[2] = rng.uniform(1.0, min(1.8, dims[2] - cfg.min_wall))
    for _ in range(n_src):
        for _try in range(100):  # a talker within distance_range of the mic, inside the room
            direction = rng.standard_normal(3)
            direction[2] *= 0.2
            pos = mic + direction / np.linalg.norm(direction) * rng.uniform(*cfg.distance_range)
            if np.all(pos >= cfg.min_wall) and np.all(pos <= dims - cfg.min_wall):
                break
        else:
            pos = _position(rng, dims, cfg.min_wall)
        room.add_source(pos)
    room.add_microphone(mic)
    room.compute_rir()
    n = int(cfg.max_seconds * sample_rate)
    rev = np.zeros((n_src, n), dtype=np.float32)
    early = np.zeros((n_src, n), dtype=np.float32)
    for k in range(n_src):
        h = np.asarray(room.rir[0][k], dtype=np.float32)[:n]
        direct = int(np.argmax(np.abs(h)))
        stop = direct + int(cfg.early_ms * 1e-3 * sample_rate)
        scale = 1.0 / (np.abs(h[direct]) + 1e-9)  # direct path at unit gain
        rev[k, : len(h)] = h * scale
        early[k, : min(stop, len(h))] = h[:stop] * scale
    return rev, early, rt60


def build_room_bank(
    out_dir: str | Path,
    n_rooms: int = 500,
    sample_rate: int = 8000,
    n_src: int = 2,
    seed: int = 0,
    cfg: RoomConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``out_dir/rooms.npz`` (see :class:`RoomBank`) and a card; returns ``out_dir``."""
    if n_rooms < 1:
        raise InputError(f"n_rooms must be at least 1, got {n_rooms}")
    cfg = cfg or RoomConfig()
    revs, earlies, rt60s = [], [], []
    for i in range(n_rooms):
        rev, early, rt60 = simulate_room(np.random.default_rng([seed, i]), sample_rate, n_src, cfg)
        revs.append(rev)
        earlies.append(early)
        rt60s.append(rt60)
        if progress:
            progress(i + 1, n_rooms)
    with atomic_dir(out_dir) as tmp:
        np.savez(
            tmp / "rooms.npz",
            reverberant=np.stack(revs),
            early=np.stack(earlies),
            rt60=np.array(rt60s, dtype=np.float32),
            sample_rate=np.array(sample_rate),
        )
        write_card(
            tmp,
            {
                "kind": "room-bank",
                "generator": "edgesep.data.rooms (pyroomacoustics image-source shoebox rooms)",
                "seed": seed,
                "n_rooms": n_rooms,
                "n_src": n_src,
                "sample_rate": sample_rate,
                "config": asdict(cfg),
                "target": f"direct path + early reflections ({cfg.early_ms:g} ms)",
                "content_hash": content_hash([tmp / "rooms.npz"], tmp),
            },
        )
    return Path(out_dir)


def load_room_bank(root: str | Path, sample_rate: int, n_src: int) -> RoomBank:
    """Read a bank and check it fits the data it will reverberate."""
    root = Path(root)
    path = root / "rooms.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no room bank (build one with: edgesep data rooms)")
    card = read_card(root)
    with np.load(path) as z:
        bank = RoomBank(z["reverberant"], z["early"], z["rt60"], int(z["sample_rate"]))
    if bank.sample_rate != sample_rate:
        raise InputError(
            f"{root}: room bank is at {bank.sample_rate} Hz, the data at {sample_rate}"
        )
    if bank.reverberant.shape[1] < n_src:
        raise InputError(f"{root}: rooms hold {card.get('n_src')} talkers, {n_src} are mixed")
    return bank
