"""``edgesep compress RECIPE.yaml --model M [-o ARTIFACT]``: run a compression pipeline.

Writes ``ARTIFACT.safetensors`` + ``.json`` (with the compression records, so it loads
everywhere) and ``ARTIFACT.report.json`` / ``.report.md`` (before/after: bytes, params, MACs,
latency, SI-SNRi, SDRi). Every pass's model is also saved under ``ARTIFACT.passes/NN-name`` so a
long pipeline stopped half-way keeps what it did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgesep.cli.common import console, user_errors


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, allow_nan=True) + "\n"


def register(app: typer.Typer) -> None:
    @app.command()
    def compress(
        recipe: Annotated[
            Path, typer.Argument(help="Compression recipe (configs/compress/*.yaml).")
        ],
        model: Annotated[
            str, typer.Option("--model", "-m", help="Bundled model name or artifact path.")
        ] = "convtasnet-tiny-8k",
        out: Annotated[
            Path, typer.Option("--out", "-o", help="Artifact path (stem) to write.")
        ] = Path("out/compressed/model"),
        no_report: Annotated[
            bool, typer.Option("--no-report", help="Skip the before/after measurements.")
        ] = False,
        threads: Annotated[int, typer.Option(help="CPU threads for fine-tuning.")] = 1,
    ) -> None:
        """Run a recipe's passes in order; save the artifact and a before/after report."""
        import torch

        from edgesep.atomic import write_text
        from edgesep.compress import PassContext, load_recipe, measure, run_pipeline
        from edgesep.compress.pipeline import compare, paired_latency, report_markdown
        from edgesep.config import from_dict
        from edgesep.models.artifact import save_artifact
        from edgesep.train.finetune import FitConfig, make_calibration, make_eval, make_fit
        from edgesep.zoo import load, weights_sha256

        with user_errors():
            torch.set_num_threads(threads)
            rec = load_recipe(recipe)
            base = load(model)
            stem = out.with_suffix("") if out.suffix in (".safetensors", ".json") else out
            work_dir = Path(f"{stem}.passes")
            ctx = PassContext(seed=rec.seed, teacher=base, work_dir=work_dir)
            if rec.fit:
                cfg = from_dict(FitConfig, {"threads": threads, **rec.fit})
                fit = make_fit(cfg)
                calibration = make_calibration(fit, rec.calibration_batches, cfg.batch_size)
                ctx.fit, ctx.evaluate, ctx.calibration = fit, make_eval(fit), calibration
            before = None if no_report else measure(base, rec.report, progress=True)
            work_dir.mkdir(parents=True, exist_ok=True)  # after the data proved readable
            stats: list[dict[str, Any]] = []

            def on_pass(i: int, result: Any) -> None:
                name = result.record["pass"]
                save_artifact(result.model, work_dir / f"{i + 1:02d}-{name}")
                stats.append(
                    {
                        "pass": name,
                        "record_params": result.record.get("params"),
                        "stats": result.stats,
                    }
                )
                write_text(work_dir / "stats.json", _json(stats))

            final, _ = run_pipeline(rec, base, ctx, console=console, on_pass=on_pass)
            after = None if no_report else measure(final, rec.report, progress=True)
            summary: dict[str, Any] = {
                "recipe": str(recipe),
                "source_model": model,
                "passes": stats,
            }
            if before is not None and after is not None:
                # timed in turn, several rounds, so the ratio holds on a loaded machine
                lat = paired_latency({"before": base, "after": final}, threads=rec.report.threads)
                before["latency_1s_p50_ms"], after["latency_1s_p50_ms"] = (
                    lat["before"],
                    lat["after"],
                )
                report = {"before": before, "after": after, "compare": compare(before, after)}
                summary["report"] = report
                source = {"model": model, "model_weights_sha256": weights_sha256(model)}
                record = {**report, "recipe": str(recipe), **source}
                write_text(f"{stem}.report.json", _json(record))
                write_text(f"{stem}.report.md", report_markdown(before, after, rec))
                console.print(report_markdown(before, after, rec))
            path = save_artifact(final, stem, {"compression": summary})
        console.print(f"compressed model: {path}")
