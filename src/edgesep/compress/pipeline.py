"""Compression pipelines: a YAML recipe -> passes in order -> artifact + before/after report.

A recipe::

    fit: {data: {...}, valid_dirs: [...], batch_size: 4, ...}   # the fine-tuning data (train's)
    seed: 0
    passes:
      - {pass: sparsity, weight: 1.0e-3, steps: 200}
      - {pass: prune-structured, ratio: 0.5, iterative_steps: 2, finetune_steps: 150}
      - {pass: distill, steps: 200, alpha: 0.5}
      - {pass: cluster, bits: 4}
    report: {test_dirs: [data/mix8k/synth-test, data/mix8k/real-test], max_items: 100}

The teacher of distillation passes is the pipeline's input model. :func:`run_pipeline` runs the
passes with :func:`~edgesep.compress.base.run_pass` (so records accumulate on the model),
:func:`measure` gives the report figures of a model: artifact bytes on disk, params, MACs per
second of audio, one-thread latency of a 1 s chunk (p50, torch eager), and SI-SNRi / SDRi on the
test folders (the same ``evaluate`` as ``edgesep evaluate``). Latency is measured before and
after in the same process, so the ratio holds on a shared machine; absolute times do not.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from edgesep.bench.latency import torch_chunk_timing
from edgesep.bench.macs import macs_per_second
from edgesep.compress.base import PassContext, PassResult, make_pass, run_pass
from edgesep.config import load_file
from edgesep.errors import InputError
from edgesep.evaluate import evaluate
from edgesep.models.artifact import artifact_paths, save_artifact
from edgesep.models.base import Separator


@dataclass(frozen=True)
class ReportConfig:
    test_dirs: tuple[str, ...] = ()
    max_items: int = 100
    latency_runs: int = 20
    threads: int = 1


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe; ``fit`` stays a dict (the CLI builds the fit callable from it)."""

    passes: tuple[dict[str, Any], ...]
    fit: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    report: ReportConfig = field(default_factory=ReportConfig)
    source: str = ""
    calibration_batches: int = 2  # of fit.batch_size mixtures, for sensitivity / PTQ


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe: every pass must be registered and its params known."""
    data = load_file(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a compression recipe must be a mapping")
    unknown = set(data) - {"passes", "fit", "seed", "report", "export", "calibration_batches"}
    if unknown:
        raise InputError(f"{path}: unknown recipe keys {sorted(unknown)}")
    passes = data.get("passes") or []
    if not isinstance(passes, list) or not passes:
        raise InputError(f"{path}: 'passes' must be a non-empty list")
    for i, spec in enumerate(passes):
        if not isinstance(spec, dict):
            raise InputError(f"{path}: passes[{i}] must be a mapping with a 'pass' key")
        try:
            make_pass(spec)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: passes[{i}]: {exc}") from None
    from edgesep.config import from_dict

    report = from_dict(ReportConfig, dict(data.get("report") or {}))
    return Recipe(
        passes=tuple(dict(p) for p in passes),
        fit=dict(data.get("fit") or {}),
        seed=int(data.get("seed", 0)),
        report=report,
        source=str(path),
        calibration_batches=int(data.get("calibration_batches", 2)),
    )


def artifact_bytes(model: Separator) -> int:
    """Bytes of the model's weights file as :func:`save_artifact` writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        return save_artifact(model, Path(tmp) / "m").stat().st_size


def measure(model: Separator, cfg: ReportConfig, progress: bool = False) -> dict[str, Any]:
    """The report figures of ``model`` (see the module docstring)."""
    model.eval()
    timing = torch_chunk_timing(
        model, model.sample_rate, threads=cfg.threads, n_runs=cfg.latency_runs
    )
    out: dict[str, Any] = {
        "bytes": artifact_bytes(model),
        "n_params": model.n_params(),
        "macs_per_second": macs_per_second(model),
        "latency_1s_p50_ms": timing.p50_ms,
    }
    for d in cfg.test_dirs:
        report = evaluate(
            model, d, max_items=cfg.max_items or None, progress=progress, references=False
        )
        out[Path(d).name] = {
            "si_snri": report.mean("model", "si_snri"),
            "sdri": report.mean("model", "sdri"),
            "n_files": len(report.files),
        }
    if cfg.test_dirs:
        sets = [out[Path(d).name] for d in cfg.test_dirs]
        out["si_snri"] = sum(s["si_snri"] for s in sets) / len(sets)
        out["sdri"] = sum(s["sdri"] for s in sets) / len(sets)
    return out


def paired_latency(
    models: dict[str, Separator], rounds: int = 5, n_runs: int = 10, threads: int = 1
) -> dict[str, float]:
    """Median over ``rounds`` of each model's p50 latency of a 1 s chunk, the models timed in
    turn within every round, so that load on a shared machine falls on all of them alike."""
    samples: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for name, model in models.items():
            t = torch_chunk_timing(model, model.sample_rate, threads=threads, n_runs=n_runs)
            samples[name].append(t.p50_ms)
    return {k: float(sorted(v)[len(v) // 2]) for k, v in samples.items()}


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Ratios and quality deltas of two :func:`measure` results."""
    out: dict[str, Any] = {
        "bytes_ratio": before["bytes"] / after["bytes"],
        "params_ratio": before["n_params"] / after["n_params"],
        "macs_ratio": before["macs_per_second"] / max(1, after["macs_per_second"]),
        "latency_ratio": before["latency_1s_p50_ms"] / after["latency_1s_p50_ms"],
    }
    for key in ("si_snri", "sdri"):
        if key in before and key in after:
            out[f"{key}_delta_db"] = after[key] - before[key]
    return out


def run_pipeline(
    recipe: Recipe,
    model: Separator,
    ctx: PassContext,
    console: Console | None = None,
    on_pass: Callable[[int, PassResult], None] | None = None,
) -> tuple[Separator, list[PassResult]]:
    """Run the recipe's passes in order; the input model is the distillation teacher."""
    console = console or Console()
    if ctx.teacher is None:
        ctx.teacher = model
    results: list[PassResult] = []
    current = model
    for i, spec in enumerate(recipe.passes):
        p = make_pass(spec)
        console.print(f"[bold]pass {i + 1}/{len(recipe.passes)}[/] {spec['pass']} {spec}")
        result = run_pass(p, current, ctx)
        results.append(result)
        if on_pass is not None:
            on_pass(i, result)
        current = result.model
        console.print(f"  {current.n_params():,} params, {result.stats.get('seconds', 0):.1f} s")
    return current, results


def report_markdown(before: dict[str, Any], after: dict[str, Any], recipe: Recipe) -> str:
    """A before/after table."""
    rows = [
        ("bytes", "bytes"),
        ("params", "n_params"),
        ("MACs/s", "macs_per_second"),
        ("latency 1 s chunk p50 (ms, 1 thread)", "latency_1s_p50_ms"),
        ("SI-SNRi (dB)", "si_snri"),
        ("SDRi (dB)", "sdri"),
    ]
    lines = [f"# Compression report: {recipe.source}", "", "| | before | after |", "|---|---|---|"]
    for label, key in rows:
        if key in before:
            b, a = before[key], after[key]
            fmt = "{:.2f}" if isinstance(b, float) else "{:,}"
            lines.append(f"| {label} | {fmt.format(b)} | {fmt.format(a)} |")
    for k, v in compare(before, after).items():
        lines.append(f"| {k} | | {v:.3f} |")
    return "\n".join(lines) + "\n"


def artifact_stem(path: str | Path) -> Path:
    return artifact_paths(path)[0].with_suffix("")
