"""The compression targets of docs/COMPRESSION.md, measured side by side in one run.

Reads a pipeline run of ``edgesep compress`` (its ``.passes/`` folder holds every pass's model)
and measures, on the same test subsets (the first ``--max-items`` mixtures of each test folder):

- the input model; the structurally pruned and fine-tuned model (pass 1); the distilled model
  (pass 2, when the recipe has one); the final artifact;
- 4-bit clustering of the input model alone (no fine-tuning), its biases/norms as float32 and
  on one shared 8-bit codebook;
- with ``--alone N``: the pruned model fine-tuned N steps with the task loss only (the same
  student, data, seed and budget as the distillation pass), to compare with distillation.

Per model: artifact bytes, params, MACs per second of audio, SI-SNRi and SDRi per test set;
latency (p50 of a 1 s chunk, one thread, torch eager) is timed for all models in turn, several
rounds, median (ratios only: the machine is shared).

Usage: python benchmarks/compress_targets.py RUN_STEM --recipe RECIPE [--alone 200]
       [--max-items 100] [--out docs/compression/RESULT.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from edgesep.atomic import write_text
from edgesep.compress import load_recipe, measure, run_pass
from edgesep.compress.passes import Cluster
from edgesep.compress.pipeline import ReportConfig, paired_latency
from edgesep.config import from_dict
from edgesep.models.artifact import load_artifact
from edgesep.models.base import Separator
from edgesep.train.finetune import FitConfig, make_fit
from edgesep.zoo import load, weights_sha256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the -o stem of an edgesep compress run")
    ap.add_argument("--recipe", type=Path, required=True)
    ap.add_argument("--model", default="convtasnet-tiny-8k")
    ap.add_argument("--alone", type=int, default=0, help="task-loss-only fine-tune steps")
    ap.add_argument("--max-items", type=int, default=100)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    recipe = load_recipe(args.recipe)
    cfg = ReportConfig(test_dirs=recipe.report.test_dirs, max_items=args.max_items)
    models: dict[str, Separator] = {"input": load(args.model)}
    passes = Path(f"{args.run}.passes")
    for path in sorted(passes.glob("*.safetensors")):
        models[f"pass {path.stem}"] = load_artifact(path)
    final = Path(f"{args.run}.safetensors")
    if final.is_file():
        models["final"] = load_artifact(final)
    for raw_bits in (0, 8):
        label = f"cluster 4-bit only (biases {'fp32' if not raw_bits else '8-bit shared'})"
        models[label] = run_pass(Cluster(bits=4, raw_bits=raw_bits), models["input"]).model
    if args.alone:
        # the distillation pass's student: the pruned model, trained with the task loss alone
        fit = make_fit(from_dict(FitConfig, {"threads": 1, **recipe.fit}))
        alone = load_artifact(next(passes.glob("*prune-structured.safetensors")))
        fit(alone, steps=args.alone, seed=recipe.seed)
        models[f"pruned + {args.alone} steps task loss only"] = alone
    results: dict[str, Any] = {}
    for name, model in models.items():
        print(f"measuring {name}", flush=True)
        results[name] = measure(model, cfg)
    latency = paired_latency(models, rounds=9, n_runs=10)
    for name, ms in latency.items():
        results[name]["latency_1s_p50_ms"] = ms
    out = {
        "run": str(args.run),
        "model": args.model,
        "model_weights_sha256": weights_sha256(args.model),
        "recipe": str(args.recipe),
        "max_items": args.max_items,
        "test_dirs": list(cfg.test_dirs),
        "models": results,
    }
    write_text(args.out, json.dumps(out, indent=2) + "\n")
    write_text(args.out.with_suffix(".md"), table(results) + "\n")
    print(table(results))


def table(results: dict[str, Any]) -> str:
    """Markdown: each model against the input (bytes, MACs and latency as ratios)."""
    base = results["input"]
    sets = [k for k, v in base.items() if isinstance(v, dict)]
    head = "| model | bytes | x smaller | params | MACs/s | latency x | SI-SNRi | dB vs input |"
    lines = [head + "".join(f" {s} |" for s in sets), "|---" * (8 + len(sets)) + "|"]
    for name, r in results.items():
        lat = base["latency_1s_p50_ms"] / r["latency_1s_p50_ms"]
        delta = r.get("si_snri", 0.0) - base.get("si_snri", 0.0)
        cells = [
            name,
            f"{r['bytes']:,}",
            f"{base['bytes'] / r['bytes']:.2f}",
            f"{r['n_params']:,}",
            f"{r['macs_per_second'] / 1e6:.1f} M",
            f"{lat:.2f}",
            f"{r.get('si_snri', float('nan')):.2f}",
            f"{delta:+.2f}",
            *(f"{r[s]['si_snri']:.2f}" for s in sets),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
