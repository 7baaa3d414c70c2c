"""Fixed mixture sets from an utterance corpus, in the WSJ0-2mix style.

Each mixture takes ``n_src`` utterances of distinct speakers. Every source is brought to a common
active level, then offset so that source 1 is ``r`` dB louder than source ``i`` with ``r`` drawn
uniformly from ``level_range_db`` (for two sources: +r/2 and -r/2 dB, as WSJ0-2mix applies its
SNR in [0, 5] dB). Unlike WSJ0-2mix, levels are measured on the part of each utterance that is
actually used (after 'min' truncation), so the stated levels are the levels in the written files.

Output (``out_dir``)::

    mix/ s1/ s2/ [s3/]   16-bit PCM wav, one file per mixture, same name in every folder
    metadata.csv         LibriMix-style: mixture_ID,mixture_path,source_1_path,...,length
    mixlist.csv          provenance: the utterances, speakers and gains behind each mixture
    card.json            seed, sources, counts, duration, content hash and parameters

Sources are rounded to 16 bits first and the mixture is their integer sum, so ``mix`` equals the
sum of the written sources exactly; everything is scaled by one common factor whenever a mixture
or source peak would pass 0.9 full scale. The set is built in a hidden folder beside ``out_dir``
and renamed into place at the end, so an interrupted build leaves nothing half-written.

References: Hershey et al., "Deep clustering: discriminative embeddings for segmentation and
separation", ICASSP 2016 (WSJ0-2mix); Cosentino et al., "LibriMix", arXiv:2005.11262 (2020).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from edgesep.atomic import atomic_dir, check_replaceable
from edgesep.data.cards import content_hash, write_card
from edgesep.data.corpus import Utterance
from edgesep.errors import InputError

__all__ = ["PEAK_LIMIT", "REFERENCE_LEVEL_DBFS", "active_level_db", "build_mixtures"]

REFERENCE_LEVEL_DBFS = -25.0
PEAK_LIMIT = 0.9
_SUBTYPE = "PCM_16"
_FULL_SCALE = 32768.0
_GATE_DB = -40.0
_MAX_REDRAWS = 100


def active_level_db(x: np.ndarray, sample_rate: int) -> float:
    """Active level of ``x`` (T,) in dB full scale: RMS over 20 ms frames within 40 dB of the
    loudest, so leading/trailing silence and zero padding do not lower it. -inf for silence."""
    x = np.asarray(x, dtype=np.float64)
    frame = max(1, sample_rate // 50)
    n_frames = len(x) // frame
    frames = x[: n_frames * frame].reshape(n_frames, frame) if n_frames else x.reshape(1, -1)
    power = (frames**2).mean(axis=1)
    peak = float(power.max()) if power.size else 0.0
    if peak <= 0.0:
        return float("-inf")
    active = power[power >= peak * 10.0 ** (_GATE_DB / 10.0)]
    return float(10.0 * np.log10(active.mean()))


@dataclass(frozen=True)
class _Plan:
    name: str
    utts: tuple[Utterance, ...]
    gains_db: tuple[float, ...]


def _labels(pool: list[Utterance]) -> dict[Path, str]:
    """Utterance ids for file names; prefixed with the speaker when ids repeat across speakers."""
    stems = [u.utt_id for u in pool]
    unique = len(set(stems)) == len(stems)
    return {u.path: u.utt_id if unique else f"{u.speaker}-{u.utt_id}" for u in pool}


def _plan(
    pool: list[Utterance],
    n_mixtures: int,
    n_src: int,
    level_range_db: tuple[float, float],
    rng: np.random.Generator,
) -> list[_Plan]:
    by_speaker: dict[str, list[Utterance]] = {}
    for u in pool:
        by_speaker.setdefault(u.speaker, []).append(u)
    names = sorted(by_speaker)
    labels = _labels(pool)
    lo, hi = level_range_db
    plans: list[_Plan] = []
    seen: set[str] = set()
    redraws = 0
    while len(plans) < n_mixtures:
        picked = rng.choice(len(names), size=n_src, replace=False)
        utts = []
        for k in picked:
            group = by_speaker[names[int(k)]]
            utts.append(group[int(rng.integers(len(group)))])
        rel = np.concatenate([[0.0], -rng.uniform(lo, hi, size=n_src - 1)])
        gains = tuple(float(g) for g in rel - rel.mean())
        name = "_".join(f"{labels[u.path]}_{g:.4f}" for u, g in zip(utts, gains, strict=True))
        if name in seen:
            redraws += 1
            if redraws > _MAX_REDRAWS:
                raise InputError(f"cannot draw {n_mixtures} distinct mixtures from this corpus")
            continue
        seen.add(name)
        plans.append(_Plan(name, tuple(utts), gains))
    return plans


def _render(plan: _Plan, sample_rate: int, mode: str) -> tuple[np.ndarray, float]:
    """(S, T) int16 sources for one mixture and the common scale applied to them."""
    signals = []
    for u in plan.utts:
        x = u.load()
        if u.sample_rate != sample_rate:
            x = soxr.resample(x, u.sample_rate, sample_rate, "HQ")
        signals.append(np.asarray(x, dtype=np.float64))
    lengths = [len(x) for x in signals]
    length = min(lengths) if mode == "min" else max(lengths)
    if length == 0:
        raise InputError(f"{plan.utts[lengths.index(0)].path}: utterance is empty")
    stack = np.zeros((len(signals), length))
    for i, (u, x, gain) in enumerate(zip(plan.utts, signals, plan.gains_db, strict=True)):
        stack[i, : min(length, len(x))] = x[:length]
        level = active_level_db(stack[i], sample_rate)
        if not np.isfinite(level):
            raise InputError(f"{u.path}: the part used in mixture {plan.name} is silent")
        stack[i] *= 10.0 ** ((REFERENCE_LEVEL_DBFS + gain - level) / 20.0)
    peak = max(float(np.abs(stack.sum(axis=0)).max()), float(np.abs(stack).max()))
    scale = min(1.0, PEAK_LIMIT / peak)
    return np.round(stack * scale * _FULL_SCALE).astype(np.int16), scale


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _sources_card(pool: list[Utterance], used: set[Path]) -> list[dict[str, Any]]:
    """One entry per (corpus root, split): the speakers offered and how many utterances used."""
    groups: dict[tuple[str, str], list[Utterance]] = {}
    for u in pool:
        groups.setdefault((str(u.path.parent.parent.parent), u.split), []).append(u)
    return [
        {
            "root": root,
            "split": split,
            "speakers": sorted({u.speaker for u in group}),
            "n_utterances": len(group),
            "n_utterances_used": sum(u.path in used for u in group),
        }
        for (root, split), group in sorted(groups.items())
    ]


def build_mixtures(
    utts: list[Utterance],
    out_dir: str | Path,
    n_mixtures: int,
    sample_rate: int = 8000,
    mode: Literal["min", "max"] = "min",
    level_range_db: tuple[float, float] = (0.0, 5.0),
    seed: int = 0,
    n_src: int = 2,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Build ``n_mixtures`` WSJ0-2mix-style mixtures of ``utts`` under ``out_dir``; return it.

    ``mode`` 'min' truncates every mixture to its shortest source, 'max' zero-pads to the
    longest. Utterances are resampled (soxr HQ) to ``sample_rate`` where needed. The same
    utterances, seed and parameters always give byte-identical files. ``progress(done, total)``
    is called after each mixture. An existing non-empty ``out_dir`` is only replaced with
    ``overwrite=True``, and only once the new set is complete.
    """
    out = Path(out_dir)
    if mode not in ("min", "max"):
        raise InputError(f"mode must be 'min' or 'max', got {mode!r}")
    if n_src < 2:
        raise InputError(f"n_src must be at least 2, got {n_src}")
    if n_mixtures < 1:
        raise InputError(f"n_mixtures must be at least 1, got {n_mixtures}")
    if sample_rate <= 0:
        raise InputError(f"sample_rate must be positive, got {sample_rate}")
    lo, hi = (float(v) for v in level_range_db)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise InputError(f"level_range_db must be finite (low, high), got {level_range_db}")
    if not utts:
        raise InputError("build_mixtures needs at least one utterance")
    pool = sorted(utts, key=lambda u: (u.split, u.speaker, u.path.name, str(u.path)))
    n_speakers = len({u.speaker for u in pool})
    if n_speakers < n_src:
        raise InputError(f"need at least {n_src} speakers to mix, the utterances have {n_speakers}")
    check_replaceable(out, overwrite)

    plans = _plan(pool, n_mixtures, n_src, (lo, hi), np.random.default_rng(seed))
    with atomic_dir(out, overwrite) as tmp:
        folders = ["mix"] + [f"s{i + 1}" for i in range(n_src)]
        for folder in folders:
            (tmp / folder).mkdir()
        meta_rows: list[list[Any]] = []
        list_rows: list[list[Any]] = []
        total_frames = 0
        for done, plan in enumerate(plans, start=1):
            sources, scale = _render(plan, sample_rate, mode)
            mix = sources.astype(np.int32).sum(axis=0).astype(np.int16)
            for folder, signal in zip(folders, [mix, *sources], strict=True):
                sf.write(tmp / folder / f"{plan.name}.wav", signal, sample_rate, subtype=_SUBTYPE)
            length = int(mix.shape[0])
            total_frames += length
            meta_rows.append([plan.name, *(f"{f}/{plan.name}.wav" for f in folders), length])
            row: list[Any] = [plan.name]
            for u, gain in zip(plan.utts, plan.gains_db, strict=True):
                row += [f"{u.split}/{u.speaker}/{u.path.name}", u.speaker, repr(gain)]
            list_rows.append([*row, repr(scale)])
            if progress is not None:
                progress(done, len(plans))

        src_cols = [f"source_{i + 1}_path" for i in range(n_src)]
        meta_header = ["mixture_ID", "mixture_path", *src_cols, "length"]
        (tmp / "metadata.csv").write_text(_csv_text(meta_header, meta_rows), encoding="utf-8")
        list_header = ["mixture_ID"]
        for i in range(1, n_src + 1):
            list_header += [f"source_{i}_utterance", f"source_{i}_speaker", f"source_{i}_gain_db"]
        list_header.append("scale")
        (tmp / "mixlist.csv").write_text(_csv_text(list_header, list_rows), encoding="utf-8")

        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        used = {u.path for plan in plans for u in plan.utts}
        card = {
            "kind": "mixtures",
            "layout": "wsj0-2mix",
            "seed": seed,
            "sources": _sources_card(pool, used),
            "counts": {
                "mixtures": len(plans),
                "sources_per_mixture": n_src,
                "speakers": n_speakers,
                "utterances": len(pool),
                "utterances_used": len(used),
                "files": len(files),
            },
            "total_duration_seconds": total_frames / sample_rate,
            "content_hash": content_hash(files, root=tmp),
            "params": {
                "n_src": n_src,
                "sample_rate": sample_rate,
                "mode": mode,
                "level_range_db": [lo, hi],
                "reference_level_dbfs": REFERENCE_LEVEL_DBFS,
                "peak_limit": PEAK_LIMIT,
                "resampler": "soxr HQ",
                "subtype": _SUBTYPE,
                "mix_is_sum": "exact: sources rounded to 16 bits, mix is their integer sum",
            },
        }
        write_card(tmp, card)
    return out
