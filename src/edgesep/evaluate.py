"""Evaluate a separator on a mixture folder against two reference systems.

Every file is scored four ways: the unprocessed mixture (each source estimated by the mixture
itself, so its SI-SNRi and SDRi are 0 dB by definition), the oracle ideal ratio and ideal binary
masks (upper references for masking in the STFT domain) and the model. For each, the estimate's
sources are matched to the references by the permutation with the best mean SI-SNR, then SI-SNR,
SI-SNRi, SDR and SDRi are averaged over sources. Results go to a per-file CSV and a summary JSON.

References: Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019 (SI-SNR);
Vincent et al., "Performance measurement in blind audio source separation", IEEE TASLP 2006
(SDR); Wang et al., "On training targets for supervised speech separation", IEEE/ACM TASLP 2014
(ideal ratio mask); Wang, "On ideal binary mask as the computational goal of auditory scene
analysis", Speech Separation by Humans and Machines, 2005 (ideal binary mask).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from scipy.signal import ShortTimeFFT
from scipy.signal.windows import hann

from edgesep.atomic import write_text
from edgesep.errors import InputError
from edgesep.metrics.pit import best_permutation, reorder
from edgesep.metrics.sdr import sdr
from edgesep.metrics.sisnr import si_snr
from edgesep.models.base import Separator

if TYPE_CHECKING:
    from edgesep.runtime import OfflineSession

SYSTEMS = ("mixture", "oracle-irm", "oracle-ibm", "model")
ORACLES = ("oracle-irm", "oracle-ibm")
METRICS = ("si_snr", "si_snri", "sdr", "sdri")
IRM_WINDOW_SECONDS = 0.032
EPS = 1e-8


@dataclass
class EvalReport:
    """Per-file rows (id, system, metrics), the summary dict, and where they were written."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    csv_path: Path | None = None
    json_path: Path | None = None
    files: list[str] = field(default_factory=list)

    def mean(self, system: str, metric: str) -> float:
        return float(self.summary["systems"][system][metric]["mean"])


def oracle_mask(
    mix: np.ndarray,
    sources: np.ndarray,
    sample_rate: int,
    kind: str = "irm",
    window_seconds: float = IRM_WINDOW_SECONDS,
) -> np.ndarray:
    """Oracle mask estimates applied to the mixture STFT (Hann window, 32 ms by default, 75 %
    overlap).

    ``kind="irm"``: ideal ratio mask, mask_i = |S_i| / sum_j |S_j|. ``kind="ibm"``: ideal binary
    mask, 1 for the loudest source of each time-frequency bin and 0 for the others.

    Shape: mix (T,), sources (S, T) -> (S, T)
    """
    if kind not in ("irm", "ibm"):
        raise InputError(f"unknown oracle mask {kind!r}; known: irm, ibm")
    n_win = max(4, round(window_seconds * sample_rate))
    stft = ShortTimeFFT(hann(n_win, sym=False), hop=n_win // 4, fs=sample_rate)
    n_time = mix.shape[-1]
    spec_mix = stft.stft(mix.astype(np.float64))  # (F, N)
    mag = np.abs(stft.stft(sources.astype(np.float64), axis=-1))  # (S, F, N)
    if kind == "irm":
        mask = mag / (mag.sum(axis=0, keepdims=True) + EPS)
    else:
        mask = (mag.argmax(axis=0)[None] == np.arange(mag.shape[0])[:, None, None]).astype(float)
    est = stft.istft(mask * spec_mix[None], k1=n_time)
    return np.asarray(est[..., :n_time], dtype=np.float32)


def _score(est: np.ndarray, ref: np.ndarray, base: dict[str, float]) -> dict[str, float]:
    """Source-averaged metrics of ``est`` (S, T) after the best SI-SNR permutation."""
    est_t = torch.from_numpy(np.asarray(est, dtype=np.float64))[None]
    ref_t = torch.from_numpy(np.asarray(ref, dtype=np.float64))[None]
    perm, _ = best_permutation(est_t, ref_t, si_snr)
    matched = reorder(est_t, perm)[0]
    si = float(si_snr(matched, ref_t[0]).mean())
    sd = float(np.mean(sdr(matched.numpy(), ref_t[0].numpy(), solve_perm=False)))
    return {
        "si_snr": si,
        "si_snri": si - base["si_snr"],
        "sdr": sd,
        "sdri": sd - base["sdr"],
    }


def _mixture_baseline(mix: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    tiled = np.broadcast_to(mix, ref.shape).astype(np.float64)
    ref64 = ref.astype(np.float64)
    si = float(si_snr(torch.from_numpy(tiled), torch.from_numpy(ref64)).mean())
    sd = float(np.mean(sdr(tiled, ref64, solve_perm=False)))
    return {"si_snr": si, "si_snri": 0.0, "sdr": sd, "sdri": 0.0}


def _summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for system in SYSTEMS:
        picked = [r for r in rows if r["system"] == system]
        if not picked:
            continue
        out[system] = {}
        for metric in METRICS:
            values = np.array([r[metric] for r in picked], dtype=np.float64)
            out[system][metric] = {
                "mean": float(np.mean(values)),
                "median": float(np.median(values)),
            }
    return out


def _data_card(data_dir: Path, split_dir: Path) -> dict[str, Any]:
    """Where the data came from: the nearest card.json of the split folder, up to ``data_dir``."""
    info: dict[str, Any] = {"dir": str(data_dir), "split_dir": str(split_dir)}
    folders = [split_dir, *split_dir.parents]
    stop = folders.index(data_dir) if data_dir in folders else 0
    for folder in folders[: stop + 2]:  # also one above the folder given (ROOT/card.json)
        card = folder / "card.json"
        if card.is_file():
            digest = hashlib.sha256(card.read_bytes()).hexdigest()
            return {**info, "card": str(card), "card_sha256": digest}
    return {**info, "card": None, "card_sha256": None}


def _resolve_model(
    model: Separator | str | Path, model_name: str | None
) -> tuple[Separator | OfflineSession, dict[str, Any]]:
    if isinstance(model, Separator):
        name = model_name or getattr(model, "family", type(model).__name__)
        return model, {"name": name, "card": None}
    if str(model).endswith(".onnx"):  # an exported graph: scored as ONNX Runtime runs it
        from edgesep.runtime import OfflineSession

        name = model_name or Path(model).stem
        return OfflineSession(model), {"name": name, "card": None}
    from edgesep.models.artifact import artifact_paths
    from edgesep.zoo import load, resolve

    weights = resolve(model)
    card = str(artifact_paths(weights)[1]) if weights is not None else None
    name = model_name or (weights.stem if weights is not None else str(model))
    return load(model), {"name": name, "card": card}


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]evaluate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def evaluate(
    model: Separator | str | Path,
    data_dir: str | Path,
    out_dir: str | Path | None = None,
    max_items: int | None = None,
    progress: bool = True,
    model_name: str | None = None,
    references: bool = True,
    mixture: str = "clean",
) -> EvalReport:
    """Score ``model`` (a Separator, zoo name or artifact path) on the mixtures in ``data_dir``.

    ``data_dir`` holds ``mix/ s1/ s2/ ...`` (WSJ0-2mix / LibriMix layout). With ``out_dir``,
    writes ``per_file.csv`` and ``summary.json`` there (atomically). ``references=False`` skips
    the oracle masks (a benchmark scores them once per test set, not once per model).
    ``mixture="both"`` reads WHAM!'s noisy ``mix_both/`` (references stay the clean speakers).
    """
    from edgesep.data.datasets import MixtureDataset

    data_path = Path(data_dir)
    sep, model_info = _resolve_model(model, model_name)
    if mixture not in ("clean", "both", "single"):
        raise InputError(f"mixture must be clean, both or single, got {mixture!r}")
    dataset = MixtureDataset(data_path, max_items=max_items, mixture=mixture)  # type: ignore[arg-type]
    n_items = len(dataset)
    rows: list[dict[str, Any]] = []
    ids: list[str] = []
    sample_rate: int | None = None
    with _progress(progress) as bar:
        task = bar.add_task("", total=n_items)
        for index in range(n_items):
            item = dataset[index]
            mix = np.asarray(item["mix"], dtype=np.float32)
            ref = np.asarray(item["sources"], dtype=np.float32)
            sr = int(item["sample_rate"])
            sample_rate = sample_rate or sr
            item_id = str(item["id"])
            bar.update(task, description=item_id)
            if ref.shape[0] != sep.n_src:
                raise InputError(
                    f"{data_path}: {item_id} has {ref.shape[0]} sources but the model "
                    f"separates {sep.n_src}"
                )
            base = _mixture_baseline(mix, ref)
            estimates = {
                f"oracle-{kind}": oracle_mask(mix, ref, sr, kind)
                for kind in (("irm", "ibm") if references else ())
            }
            estimates["model"] = np.asarray(sep.separate(mix, sr), dtype=np.float32)
            rows.append({"id": item_id, "system": "mixture", **base})
            for system, est in estimates.items():
                rows.append({"id": item_id, "system": system, **_score(est, ref, base)})
            ids.append(item_id)
            bar.advance(task)
    summary = {
        "n_files": len(ids),
        "sample_rate": sample_rate,
        "model": {
            **model_info,
            "family": getattr(sep, "family", None),
            "n_params": sep.n_params() if hasattr(sep, "n_params") else None,
        },
        "data": _data_card(data_path, dataset.layout.root),
        "metric_notes": (
            "dB; per file the mean over sources after the best SI-SNR permutation; "
            "null in JSON where a value is not finite (e.g. SDR of a bit-exact estimate)"
        ),
        "systems": _summarise(rows),
    }
    report = EvalReport(rows=rows, summary=summary, files=ids)
    if out_dir is not None:
        report.csv_path, report.json_path = _write_outputs(report, Path(out_dir))
    return report


def _json_safe(value: Any) -> Any:
    """Strict JSON: non-finite floats (SDR of a bit-exact estimate is +inf) become null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_outputs(report: EvalReport, out_dir: Path) -> tuple[Path, Path]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["id", "system", *METRICS], lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    csv_path, json_path = out_dir / "per_file.csv", out_dir / "summary.json"
    write_text(csv_path, buf.getvalue())
    write_text(json_path, json.dumps(_json_safe(report.summary), indent=2, allow_nan=False) + "\n")
    return csv_path, json_path
