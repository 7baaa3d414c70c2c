"""Noisy speech mixtures in the WHAM! layout: clean two-speaker mixtures plus noise at a drawn SNR.

For each mixture of a clean mixture folder (``mix/ s1/ s2/``, e.g. ``edgesep data mix`` output) a
noise kind is drawn (:mod:`edgesep.data.synth.noise`), then an SNR uniformly from ``snr_db``,
defined as in WHAM!: the louder speaker's energy over the noise energy. Everything is written
as 16-bit integers with exact sums::

    OUT/s1/, OUT/s2/, OUT/noise/        the sources and the noise (16-bit)
    OUT/mix_clean/ = s1 + s2            sample for sample
    OUT/mix_both/  = s1 + s2 + noise    sample for sample
    OUT/noise_meta.csv                  per mixture: noise kind, SNR, overall gain
    OUT/card.json

If a noisy mixture would pass 0.9 full scale, all its parts are scaled down together first.

References: Wichern et al., "WHAM!: Extending Speech Separation to Noisy Environments",
Interspeech 2019.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from edgesep.atomic import atomic_dir
from edgesep.audio import resample
from edgesep.data.cards import content_hash, write_card
from edgesep.data.corpus import load_corpus
from edgesep.data.datasets import MixtureDataset
from edgesep.data.synth.noise import NOISE_KINDS, make_noise
from edgesep.errors import InputError

FOLDERS = ("mix_both", "mix_clean", "noise", "s1", "s2")
PEAK = 0.9


def load_recordings(folder: str | Path | None, sample_rate: int) -> list[np.ndarray]:
    """Every audio file under ``folder`` (wav/flac/ogg), mono, at ``sample_rate``."""
    if folder is None:
        return []
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such noise recordings folder")
    out = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg")):
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
        if len(mono) and np.abs(mono).max() > 0:
            out.append(resample(mono, sr, sample_rate) if sr != sample_rate else mono)
    if not out:
        raise InputError(f"{root}: holds no non-silent .wav/.flac/.ogg recordings")
    return out


def build_noisy_mixtures(
    clean_dir: str | Path,
    out_dir: str | Path,
    babble_corpus: str | Path | None = None,
    babble_split: str = "train",
    noise_dir: str | Path | None = None,
    kinds: Sequence[str] = ("coloured", "babble", "transient"),
    snr_db: tuple[float, float] = (-6.0, 3.0),
    seed: int = 0,
    babble_pool_size: int = 300,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the WHAM!-layout noisy version of ``clean_dir`` to ``out_dir``; returns its card.

    ``kinds`` are drawn with equal probability per mixture; ``babble`` needs ``babble_corpus``
    (an utterance corpus; its ``babble_split`` voices should not be those of the clean speech)
    and ``real`` needs ``noise_dir`` (recordings; added to ``kinds`` automatically when given).
    Babble draws on ``babble_pool_size`` utterances of the corpus (a seeded choice, held in
    memory), from as many voices as they cover.
    """
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in NOISE_KINDS]
    if unknown or not kinds:
        raise InputError(f"noise kinds {unknown or kinds} invalid; choose from {NOISE_KINDS}")
    if snr_db[0] > snr_db[1]:
        raise InputError(f"snr_db must be (low, high), got {snr_db}")
    clean = MixtureDataset(clean_dir)
    if clean.n_src != 2:
        raise InputError(f"{clean_dir}: WHAM! mixtures have 2 speakers, found {clean.n_src}")
    sr = clean.sample_rate
    recordings = load_recordings(noise_dir, sr)
    if recordings and "real" not in kinds:
        kinds.append("real")
    pool: list[np.ndarray] = []
    n_voices = 0
    if "babble" in kinds:
        if babble_corpus is None:
            raise InputError("noise kind 'babble' needs babble_corpus (an utterance corpus)")
        utts = load_corpus(babble_corpus, babble_split)
        if any(u.sample_rate != sr for u in utts):
            raise InputError(f"{babble_corpus}/{babble_split}: corpus is not at {sr} Hz")
        picks = np.random.default_rng([seed, 2**31]).permutation(len(utts))[:babble_pool_size]
        pool = [utts[int(i)].load() for i in sorted(picks)]
        n_voices = len({utts[int(i)].speaker for i in picks})
    if "real" in kinds and not recordings:
        raise InputError("noise kind 'real' needs noise_dir with recordings")
    rows: list[list[Any]] = []
    with atomic_dir(out_dir, overwrite) as tmp:
        for folder in FOLDERS:
            (tmp / folder).mkdir()
        for i in range(len(clean)):
            item = clean[i]
            rng = np.random.default_rng([seed, i])
            kind = kinds[int(rng.integers(len(kinds)))]
            s = item["sources"].astype(np.float64)  # (2, T)
            n = s.shape[-1]
            noise = make_noise(kind, rng, n, sr, pool, recordings)
            snr = float(rng.uniform(*snr_db))
            louder = float(np.max(np.mean(s**2, axis=-1)))
            noise *= np.sqrt(louder / 10 ** (snr / 10))
            peak = float(np.abs(s.sum(axis=0) + noise).max())
            gain = min(1.0, PEAK / peak) if peak > 0 else 1.0
            parts = np.round(np.vstack([s, noise[None]]) * gain * 32768).astype(np.int32)
            parts = np.clip(parts, -32768, 32767)
            s1, s2, nz = parts
            signals = {
                "s1": s1,
                "s2": s2,
                "noise": nz,
                "mix_clean": s1 + s2,
                "mix_both": s1 + s2 + nz,
            }
            for folder, x in signals.items():
                sf.write(tmp / folder / f"{item['id']}.wav", x.astype(np.int16), sr, "PCM_16")
            rows.append([item["id"], kind, f"{snr:.4f}", f"{gain:.6f}"])
            if progress:
                progress(i + 1, len(clean))
        lines = ["mixture_ID,noise_kind,snr_db,gain"] + [",".join(map(str, r)) for r in rows]
        (tmp / "noise_meta.csv").write_text("\n".join(lines) + "\n")
        files = sorted(tmp.rglob("*.wav"))
        card = {
            "kind": "noisy-mixtures",
            "layout": "wham",
            "seed": seed,
            "sample_rate": sr,
            "clean_dir": str(clean_dir),
            "babble_corpus": None if babble_corpus is None else f"{babble_corpus}/{babble_split}",
            "babble_pool": {"utterances": len(pool), "voices": n_voices},
            "noise_dir": None if noise_dir is None else str(noise_dir),
            "params": {
                "kinds": kinds,
                "snr_db": list(snr_db),
                "snr_definition": "louder speaker energy / noise energy (WHAM!)",
                "peak_limit": PEAK,
            },
            "counts": {
                "mixtures": len(rows),
                **{f"noise_{k}": sum(r[1] == k for r in rows) for k in kinds},
            },
            "duration_seconds": round(
                sum(sf.info(str(f)).frames for f in (tmp / "mix_both").glob("*.wav")) / sr, 2
            ),
            "content_hash": content_hash(files, tmp),
        }
        write_card(tmp, card)
    return card
