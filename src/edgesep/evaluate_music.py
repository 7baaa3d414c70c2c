"""Evaluate a 4-stem music separator on MUSDB18-layout songs: per-stem cSDR and uSDR.

Every track is scored for up to three systems: the unprocessed mixture (every stem estimated by
the mixture), the oracle ideal ratio mask (per channel, 64 ms Hann STFT: an upper reference for
STFT masking) and the model. Stems are matched by name (no permutation). Per stem and track:
uSDR (the challenges' utterance-level SDR) and the BSS Eval v4 SDR (museval, median over 1 s
frames). Over tracks: uSDR is averaged, and cSDR is the median of the per-track v4 SDRs, as
SiSEC 2018 and the MUSDB18 leaderboards report. Results go to ``per_track.csv`` and
``summary.json``.

BSS Eval v4 solves an (S * C * 512)-square system per track and system: seconds per song.
``bss=False`` skips it (uSDR only).

References: Stöter et al., "The 2018 Signal Separation Evaluation Campaign", LVA/ICA 2018;
Mitsufuji et al., "Music Demixing Challenge 2021", 2022; Wang et al., IEEE/ACM TASLP 2014 (IRM).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgesep.atomic import write_text
from edgesep.data.datasets.musdb import MusdbDataset
from edgesep.errors import InputError
from edgesep.evaluate import _data_card, _json_safe, _resolve_model, oracle_mask
from edgesep.metrics.music import csdr, track_sdr_v4, usdr
from edgesep.models.base import Separator

MUSIC_SYSTEMS = ("mixture", "oracle-irm", "model")
MUSIC_IRM_WINDOW_SECONDS = 0.064


@dataclass
class MusicEvalReport:
    """Per (track, system, stem) rows, the summary dict and where they were written."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    csv_path: Path | None = None
    json_path: Path | None = None


def oracle_irm_stereo(mix: np.ndarray, stems: np.ndarray, sample_rate: int) -> np.ndarray:
    """Ideal ratio mask per channel (64 ms window).

    Shape: mix (C, T), stems (S, C, T) -> (S, C, T)
    """
    return np.stack(
        [
            oracle_mask(mix[c], stems[:, c], sample_rate, "irm", MUSIC_IRM_WINDOW_SECONDS)
            for c in range(mix.shape[0])
        ],
        axis=1,
    )


def _summarise(
    rows: list[dict[str, Any]], stems: tuple[str, ...], bss: bool
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for system in MUSIC_SYSTEMS:
        picked = [r for r in rows if r["system"] == system]
        if not picked:
            continue
        tracks = sorted({r["id"] for r in picked})
        table = {(r["id"], r["stem"]): r for r in picked}
        u = np.array([[table[t, s]["usdr"] for s in stems] for t in tracks])
        entry: dict[str, Any] = {
            "usdr": {s: float(v) for s, v in zip(stems, u.mean(axis=0), strict=True)}
        }
        entry["usdr"]["mean"] = float(u.mean())
        if bss:
            v4 = np.array([[table[t, s]["sdr_v4"] for s in stems] for t in tracks])
            c = csdr(v4)
            entry["csdr"] = {s: float(v) for s, v in zip(stems, c, strict=True)}
            entry["csdr"]["mean"] = float(np.nanmean(c))
        out[system] = entry
    return out


def evaluate_music(
    model: Separator | str | Path,
    data_dir: str | Path,
    split: str = "test",
    out_dir: str | Path | None = None,
    max_items: int | None = None,
    progress: bool = True,
    model_name: str | None = None,
    references: bool = True,
    bss: bool = True,
) -> MusicEvalReport:
    """Score ``model`` (Separator, zoo name or artifact) on the ``split`` tracks of ``data_dir``.

    The model's outputs are used as they come (no rescaling to the mixture: music models are
    trained with a scale-dependent loss). ``references=False`` skips the mixture and oracle rows.
    """
    data_path = Path(data_dir)
    sep, model_info = _resolve_model(model, model_name)
    dataset = MusdbDataset(data_path, split, max_items=max_items)
    stems = dataset.source_names
    if tuple(sep.source_names) != stems:
        raise InputError(
            f"{data_path}: tracks have stems {', '.join(stems)} but the model separates "
            f"{', '.join(sep.source_names)}"
        )
    rows: list[dict[str, Any]] = []
    rate: int | None = None
    bar = Progress(
        TextColumn("[bold]evaluate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(),
        disable=not progress,
    )
    with bar:
        task = bar.add_task("", total=len(dataset))
        for index in range(len(dataset)):
            item = dataset[index]
            mix, ref, sr = item["mix"], item["sources"], int(item["sample_rate"])
            rate = rate or sr
            bar.update(task, description=str(item["id"]))
            estimates: dict[str, np.ndarray] = {}
            if references:
                estimates["mixture"] = np.broadcast_to(mix, ref.shape)
                estimates["oracle-irm"] = oracle_irm_stereo(mix, ref, sr)
            est = sep.separate(mix, sr, rescale=False)
            estimates["model"] = est if est.ndim == 3 else est[:, None]
            for system, e in estimates.items():
                u = usdr(e, ref)
                v4 = track_sdr_v4(e, ref, sr) if bss else np.full(len(stems), np.nan)
                for k, stem in enumerate(stems):
                    rows.append(
                        {
                            "id": item["id"],
                            "system": system,
                            "stem": stem,
                            "usdr": float(u[k]),
                            "sdr_v4": float(v4[k]),
                        }
                    )
            bar.advance(task)
    summary = {
        "n_tracks": len(dataset),
        "split": split,
        "sample_rate": rate,
        "model": {
            **model_info,
            "family": getattr(sep, "family", None),
            "n_params": sep.n_params() if hasattr(sep, "n_params") else None,
        },
        "data": _data_card(data_path, data_path),
        "metric_notes": (
            "dB; uSDR: mean over tracks of 10 log10(sum s^2 / sum (s - s_hat)^2) per stem "
            "(eps 1e-7); cSDR: median over tracks of the median over 1 s frames of BSS Eval v4 "
            "SDR (museval); oracle-irm: ideal ratio mask per channel, 64 ms Hann STFT"
        ),
        "systems": _summarise(rows, stems, bss),
    }
    report = MusicEvalReport(rows=rows, summary=summary)
    if out_dir is not None:
        report.csv_path, report.json_path = _write(report, Path(out_dir))
    return report


def _write(report: MusicEvalReport, out_dir: Path) -> tuple[Path, Path]:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["id", "system", "stem", "usdr", "sdr_v4"], lineterminator="\n"
    )
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    csv_path, json_path = out_dir / "per_track.csv", out_dir / "summary.json"
    write_text(csv_path, buf.getvalue())
    write_text(json_path, json.dumps(_json_safe(report.summary), indent=2, allow_nan=False) + "\n")
    return csv_path, json_path
