"""Per-tensor sensitivity of a model (prune ratio and k-means bits), plotted.

Runs the ``sensitivity`` pass on calibration mixtures drawn from a recipe's training data
(``--batches`` x 4 mixtures of 2 s, fixed seed) and writes its tables and choices as JSON and
the plot as PNG (``docs/compression/sensitivity.{json,png}`` by default). The drop is the
*output drop* of the pass (see :mod:`edgesep.compress.passes.sensitivity`).

Usage: python benchmarks/compress_sensitivity.py [--model convtasnet-tiny-8k]
       [--recipe configs/compress/tiny-prune-distill-cluster.yaml] [--batches 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from edgesep.atomic import write_text
from edgesep.compress import PassContext, load_recipe, run_pass
from edgesep.compress.passes import Sensitivity
from edgesep.config import from_dict
from edgesep.train.finetune import FitConfig, make_calibration, make_fit
from edgesep.zoo import load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="convtasnet-tiny-8k")
    ap.add_argument(
        "--recipe", type=Path, default=Path("configs/compress/tiny-prune-distill-cluster.yaml")
    )
    ap.add_argument("--batches", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("docs/compression"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    recipe = load_recipe(args.recipe)
    fit = make_fit(from_dict(FitConfig, {"threads": 1, **recipe.fit}), progress=False)
    ctx = PassContext(calibration=make_calibration(fit, args.batches, 4), work_dir=args.out)
    p = Sensitivity(ratios=(0.25, 0.5, 0.75, 0.9), bits=(2, 3, 4, 6, 8))
    result = run_pass(p, load(args.model), ctx)
    write_text(args.out / "sensitivity.json", json.dumps(result.stats, indent=1) + "\n")
    chosen = result.stats["chosen_bits"]
    print({b: sum(1 for v in chosen.values() if v == b) for b in sorted(set(chosen.values()))})


if __name__ == "__main__":
    main()
