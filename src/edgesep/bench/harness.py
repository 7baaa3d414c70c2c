"""The benchmark: a matrix of models x variants x test sets, quality beside edge cost.

``run_bench(config)`` prepares every target (:mod:`edgesep.bench.targets`), scores it on every
test set with :func:`edgesep.evaluate.evaluate` (the unprocessed mixture and the oracle ideal
ratio and binary masks are scored once per test set as reference rows), profiles it
(:mod:`edgesep.bench.profile`), and writes to the output folder: ``results.json`` (everything),
``leaderboard.{md,csv,json}``, Pareto plots, ``report.html`` and ``manifest.json`` (what
``edgesep bench --reproduce`` re-runs). The folder appears only when complete.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from edgesep.bench.profile import ProfileSettings, profile
from edgesep.bench.targets import Target, build_target
from edgesep.errors import InputError, MissingFileError
from edgesep.evaluate import ORACLES, evaluate

QUALITY_METRICS = ("si_snri", "sdri")


@dataclass(frozen=True)
class TestSet:
    name: str
    dir: str  # a mixture folder (mix/ s1/ s2/ ..., WSJ0-2mix / LibriMix layout)
    max_items: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    model: str  # zoo name, registered config, artifact or .onnx path
    label: str = ""  # the row's name (default: the zoo name or the file's stem)
    variants: tuple[str, ...] = ("torch-fp32",)
    test_sets: tuple[str, ...] = ()  # names of the test sets to score on; empty: all


@dataclass(frozen=True)
class Calibration:
    """Mixtures that set the int8 activation ranges (never the test sets)."""

    dir: str = ""
    n_items: int = 8
    seconds: float = 4.0


@dataclass(frozen=True)
class BenchConfig:
    name: str
    test_sets: tuple[TestSet, ...]
    models: tuple[ModelEntry, ...]
    profile: ProfileSettings = field(default_factory=ProfileSettings)
    calibration: Calibration = field(default_factory=Calibration)
    seed: int = 0
    description: str = ""


def calibration_mixtures(cal: Calibration, sample_rate: int) -> list[np.ndarray]:
    """The first ``n_items`` mixtures of ``cal.dir``, cut to ``cal.seconds``, at ``sample_rate``."""
    from edgesep.audio import resample
    from edgesep.data.datasets import MixtureDataset

    if not cal.dir:
        raise InputError("an onnx-int8 variant needs calibration.dir (a mixture folder)")
    data = MixtureDataset(Path(cal.dir), max_items=cal.n_items)
    out = []
    for index in range(len(data)):
        item = data[index]
        mix = np.asarray(item["mix"], dtype=np.float32)
        mix = resample(mix, int(item["sample_rate"]), sample_rate)
        out.append(mix[..., : round(cal.seconds * sample_rate)])
    return out


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _score(
    target: Target, test: TestSet, with_refs: bool, console: Console
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(model quality, reference rows or None) of ``target`` on ``test``."""
    report = evaluate(
        target.separator,
        test.dir,
        max_items=test.max_items,
        progress=console.is_terminal,
        model_name=target.name,
        references=with_refs,
    )
    systems = report.summary["systems"]
    quality = {m: systems["model"][m]["mean"] for m in QUALITY_METRICS}
    quality["n_files"] = report.summary["n_files"]
    refs = None
    if with_refs:
        refs = {
            "data": report.summary["data"],
            "n_files": report.summary["n_files"],
            "systems": {
                s: {m: systems[s][m]["mean"] for m in QUALITY_METRICS}
                for s in ("mixture", *ORACLES)
            },
        }
    return quality, refs


def run_bench(config: BenchConfig, out_dir: Path, console: Console | None = None) -> dict[str, Any]:
    """Run ``config``; return the results and write them (with reports) to ``out_dir``."""
    from edgesep.atomic import atomic_dir
    from edgesep.bench.manifest import build_manifest
    from edgesep.bench.report import write_reports

    console = console or Console(stderr=True)
    _seed_everything(config.seed)
    tests = {t.name: t for t in config.test_sets}
    labels = [
        e.label or (Path(e.model).stem if Path(e.model).suffix else e.model) for e in config.models
    ]
    if len(set(labels)) != len(labels):
        raise InputError(
            f"{config.name}: two models share a row name ({labels}); give them distinct `label`s"
        )
    for entry in config.models:
        unknown = set(entry.test_sets) - set(tests)
        if unknown:
            raise InputError(
                f"{entry.model}: unknown test sets {sorted(unknown)}; known: {sorted(tests)}"
            )
    used = {n for e in config.models for n in (e.test_sets or tuple(tests))}
    missing = [
        f"{tests[n].dir} (test set {n})" for n in sorted(used) if not Path(tests[n].dir).is_dir()
    ]
    if missing:  # before any model is built or timed
        raise MissingFileError(
            f"{config.name}: no such folder: {', '.join(missing)}; build the data first "
            "(make data, or edgesep data mix)"
        )
    rows: list[dict[str, Any]] = []
    references: dict[str, Any] = {}
    with atomic_dir(out_dir, overwrite=True) as tmp:
        work = tmp / "artifacts"
        cal = partial(calibration_mixtures, config.calibration)  # read only for int8 variants
        for entry in config.models:
            for variant in entry.variants:
                console.print(f"[bold]bench[/] {entry.model} / {variant}")

                target = build_target(
                    entry.model, variant, work, cal, config.profile.threads, entry.label
                )
                row = profile(target, config.profile, work)
                _final_artifact_path(row, tmp, out_dir)
                row["quality"] = {}
                for name in entry.test_sets or tuple(tests):
                    _seed_everything(config.seed)
                    quality, refs = _score(target, tests[name], name not in references, console)
                    row["quality"][name] = quality
                    if refs is not None:
                        references[name] = refs
                rows.append(row)
                console.print(_one_line(row))
        results = {"name": config.name, "rows": rows, "references": references}
        manifest = build_manifest(config, rows, references)
        results["manifest"] = manifest
        write_reports(results, tmp)
    return results


def _final_artifact_path(row: dict[str, Any], tmp: Path, out_dir: Path) -> None:
    """Hash the artifact now, and name it where it will be once the folder is swapped in."""
    from edgesep.bench.manifest import file_sha256

    artifact = row["artifact"]
    row["artifact_sha256"] = file_sha256(artifact) if artifact else None
    if artifact and Path(artifact).is_relative_to(tmp):
        row["artifact"] = str(out_dir / Path(artifact).relative_to(tmp))


def _one_line(row: dict[str, Any]) -> str:
    quality = ", ".join(f"{name} {q['si_snri']:.2f} dB" for name, q in row["quality"].items())
    lat = row["latency"]
    comp = lat["compute"]["p50_ms"] if lat["compute"] else float("nan")
    return (
        f"  SI-SNRi {quality}; {row['bytes'] / 1e6:.2f} MB, "
        f"{row['macs_per_second'] / 1e6:.0f} MMAC/s, {comp:.1f} ms per call, "
        f"RTF {lat['rtf']['median']:.3f}"
    )
