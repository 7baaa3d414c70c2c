"""``edgesep bench CONFIG.yaml`` and ``edgesep profile MODEL``: quality beside edge cost.

``bench`` runs a benchmark config (models x variants x test sets) and writes the leaderboard,
plots, HTML report and manifest to one folder; ``--docs`` also publishes the Markdown report
(``make bench`` writes docs/BENCHMARKS.md this way). ``bench --reproduce MANIFEST.json`` re-runs
a manifest's config and checks the figures: quality identical, timings within their spread.
``profile`` measures one model in one variant, without a test set.
"""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from edgesep.cli.common import console, err_console, fail, user_errors


def _load_config(path: Path, overrides: list[str]) -> Any:
    from edgesep.bench.harness import BenchConfig
    from edgesep.config import apply_overrides, from_dict, load_file

    return from_dict(BenchConfig, apply_overrides(load_file(path), overrides))


def bench(
    config: Annotated[
        Path | None,
        typer.Argument(help="Benchmark config (YAML), e.g. configs/bench/bundled.yaml."),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Config overrides, a.b=c.", show_default=False)
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Output folder [out/bench/<name>].")
    ] = None,
    docs: Annotated[
        Path | None, typer.Option(help="Also publish the Markdown report here (plots beside it).")
    ] = None,
    reproduce: Annotated[
        Path | None, typer.Option(help="Re-run this manifest.json and compare the figures.")
    ] = None,
) -> None:
    """Benchmark models x variants x test sets: quality, size, MACs, RAM, latency, budgets."""
    from edgesep.bench.harness import BenchConfig, run_bench
    from edgesep.bench.report import publish
    from edgesep.config import from_dict

    if (config is None) == (reproduce is None):
        fail("give a benchmark config, or --reproduce MANIFEST.json (not both)")
    with user_errors():
        if reproduce is not None:
            manifest = json.loads(reproduce.read_text())
            cfg = from_dict(BenchConfig, manifest["config"])
            old_results = reproduce.parent / "results.json"
            if not old_results.is_file():
                fail(f"{old_results}: --reproduce needs the run's results.json beside its manifest")
        else:
            assert config is not None
            cfg = _load_config(config, overrides or [])
        out_dir = out or Path("out/bench") / (cfg.name + ("-reproduce" if reproduce else ""))
        results = run_bench(cfg, out_dir, err_console)
        if docs is not None:
            publish(out_dir, docs)
            console.print(f"published {docs}")
    console.print(f"wrote {out_dir}/ (leaderboard.md, report.html, manifest.json)")
    if reproduce is not None:
        _report_reproduction(json.loads(old_results.read_text()), results, out_dir)


def _report_reproduction(old: dict[str, Any], new: dict[str, Any], out_dir: Path) -> None:
    from edgesep.atomic import write_text
    from edgesep.bench.manifest import compare

    verdict = compare(old, new)
    write_text(out_dir / "reproduce.json", json.dumps(verdict, indent=1) + "\n")
    for check in verdict["checks"]:
        if not check["ok"]:
            console.print(
                f"[red]differs[/] {check['kind']}: {check['what']}: "
                f"{check['old']} -> {check['new']}"
            )
    n_ok = sum(c["ok"] for c in verdict["checks"])
    console.print(
        f"{n_ok}/{len(verdict['checks'])} checks as before; quality identical: "
        f"{verdict['quality_identical']}; timings within spread: "
        f"{verdict['timings_within_spread']}"
    )
    if not verdict["quality_identical"]:
        raise typer.Exit(code=1)


def profile(
    model: Annotated[str, typer.Argument(help="Zoo name, config name, artifact or .onnx file.")],
    variant: Annotated[
        str, typer.Option(help="torch-fp32 | onnx-fp32 | onnx-int8 (.onnx files: onnx).")
    ] = "",
    device: Annotated[
        list[str] | None, typer.Option(help="Device profile name or YAML (repeatable).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Threads for inference.")] = 1,
    calibration: Annotated[
        Path | None, typer.Option(help="Mixture folder for onnx-int8 calibration.")
    ] = None,
    memory: Annotated[bool, typer.Option(help="Measure peak RAM in a child process.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
) -> None:
    """Profile one model: params, bytes, MACs, peak RAM, latency, RTF, energy, budgets."""
    from dataclasses import replace

    from edgesep.bench.harness import Calibration, calibration_mixtures
    from edgesep.bench.profile import ProfileSettings, profile
    from edgesep.bench.targets import build_target

    chosen = variant or ("onnx" if model.endswith(".onnx") else "torch-fp32")
    settings = ProfileSettings(threads=threads, measure_memory=memory)
    if device:
        settings = replace(settings, devices=tuple(device))
    with user_errors(), tempfile.TemporaryDirectory(prefix="edgesep-profile-") as tmp:
        if chosen == "onnx-int8" and calibration is None:
            fail("onnx-int8 needs --calibration MIXTURE_DIR")
        cal = partial(calibration_mixtures, Calibration(dir=str(calibration or "")))
        target = build_target(model, chosen, Path(tmp), cal, threads)
        result = profile(target, settings, Path(tmp))
    if as_json:
        console.print_json(json.dumps(result))
        return
    _print_profile(result)


SHORT = {"latency_ms": "latency", "model_mb": "size", "ram_mb": "RAM", "rtf": "RTF"}


def _print_profile(r: dict[str, Any]) -> None:
    from rich.table import Table

    lat, comp = r["latency"], r["latency"]["compute"] or {}
    mem = r["memory"] or {}
    console.print(
        f"[bold]{r['name']}[/] ({r['family']}, {r['dtype']}, "
        f"{'trained' if r['trained'] else 'untrained'})"
    )
    console.print(
        f"  params {r['params']:,}; {r['bytes'] / 1e6:.3f} MB "
        f"{'on disk' if r.get('bytes_measured', True) else '(estimate: 4 bytes a parameter)'}; "
        f"{r['macs_per_second'] / 1e6:.1f} MMAC per second of audio"
    )
    console.print(
        f"  compute per call of {lat['call_ms']:.1f} ms ({lat['threads']} thread): "
        f"p50 {comp.get('p50_ms', float('nan')):.2f} / p95 "
        f"{comp.get('p95_ms', float('nan')):.2f} / p99 "
        f"{comp.get('p99_ms', float('nan')):.2f} ms; RTF {lat['rtf']['median']:.4f}"
    )
    console.print(
        f"  algorithmic latency {lat['algorithmic_ms']:.1f} ms; peak RAM "
        f"{mem.get('peak_rss_mb', float('nan')):.0f} MB, of which the model "
        f"{mem.get('model_rss_mb', float('nan')):.1f} MB"
    )
    table = Table("device", "figures", "latency ms", "RTF", "budgets", "energy mJ/s (est.)")
    for name, dev in r["devices"].items():
        verdicts = [
            f"{SHORT.get(k, k)} {'ok' if v['pass'] else 'FAIL' if v['pass'] is False else '?'}"
            for k, v in dev["budgets"].items()
        ]
        lat_ms = dev["latency_ms"]
        table.add_row(
            name,
            dev["kind"],
            "—" if lat_ms is None else f"{lat_ms:.1f}",
            f"{dev['rtf']:.4f}",
            ", ".join(verdicts),
            f"{dev['energy']['mj_per_audio_second']:.3f}" if "energy" in dev else "shared",
        )
    console.print(table)
    console.print(
        f"  energy (estimate, 45 nm per-operation figures, weights from DRAM; 'shared' rows): "
        f"{r['energy']['mj_per_audio_second']:.3f} mJ per second of audio"
    )


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
    app.command("profile")(profile)
