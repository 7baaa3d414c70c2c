"""How well the search's latency predictor predicts configs it never saw (issue 18's MAPE).

Draws ``--n`` random valid configs of a search space (seeded), measures each as the search does
(``measured_cost``: ONNX Runtime, one thread, p50 of ``cost.n_runs`` calls of the space's call
size), fits the predictor on the first ``--n-fit`` of them and reports the mean absolute
percentage error on the rest, beside the leave-one-out MAPE over all. No training is involved.

Usage: python benchmarks/latency_predictor.py configs/search/convtasnet-8k.yaml \
           [--n 45] [--n-fit 30] [--n-runs N] [--seed 0] [--out FILE]
(default FILE: benchmarks/results/latency-predictor-NAME.json)
Timings are of this machine: run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.search import predictor
from edgesep.search.cost import measured_cost, static_cost
from edgesep.search.driver import build_space_model
from edgesep.search.space import Param, Space, load_space
from edgesep.sysinfo import cpu_description

ROOT = Path(__file__).resolve().parents[1]


def draw(p: Param, rng: np.random.Generator) -> Any:
    if p.choices:
        return p.choices[int(rng.integers(len(p.choices)))]
    assert p.low is not None and p.high is not None
    if p.is_int:
        step = int(p.step or 1)
        return int(p.low) + step * int(rng.integers((int(p.high) - int(p.low)) // step + 1))
    return float(rng.uniform(p.low, p.high))


def sample_configs(space: Space, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct configs of ``space`` that meet its constraints."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for _ in range(100 * n):
        values = {p.name: draw(p, rng) for p in space.params}
        if values not in out and not space.violated(values):
            out.append(values)
            if len(out) == n:
                return out
    raise SystemExit(f"{space.name}: found only {len(out)} distinct valid configs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--n", type=int, default=45)
    parser.add_argument("--n-fit", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-runs", type=int, default=0, help="timed calls (default: the space's)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    space = load_space(args.space)
    if args.n_runs:
        space = dataclasses.replace(space, cost=dataclasses.replace(space.cost, n_runs=args.n_runs))
    if not predictor.MIN_POINTS <= args.n_fit < args.n:
        raise SystemExit(f"--n-fit must be in [{predictor.MIN_POINTS}, --n)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, values in enumerate(sample_configs(space, args.n, args.seed)):
            model = build_space_model(space, values).eval()
            row = {"values": values, **static_cost(model, space.cost)}
            row.update(measured_cost(model, space.cost, Path(tmp) / f"{i:03d}"))
            rows.append(row)
            print(f"{i + 1}/{args.n} {values}: {row['compute_ms']:.2f} ms", flush=True)
    fitted = predictor.fit(rows[: args.n_fit])
    held = rows[args.n_fit :]
    errors = [abs(fitted.predict(r) - r["compute_ms"]) / r["compute_ms"] for r in held]
    loo = predictor.leave_one_out(rows)
    result = {
        "space": args.space,
        "cpu": cpu_description(),
        "threads": space.cost.threads,
        "n_runs": space.cost.n_runs,
        "n_fit": args.n_fit,
        "n_held_out": len(held),
        "held_out_mape": float(np.mean(errors)),
        "held_out_max_ape": float(np.max(errors)),
        "leave_one_out_mape": loo["mape"],
        "predictor": fitted.to_dict(),
        "rows": [
            {
                "values": r["values"],
                "params": r["params"],
                "n_nodes": r["n_nodes"],
                "activation_elems": r["activation_elems"],
                "state_elems": r["state_elems"],
                "call_macs": r["call_macs"],
                "compute_ms": r["compute_ms"],
                "predicted_ms": fitted.predict(r),
                "held_out": i >= args.n_fit,
            }
            for i, r in enumerate(rows)
        ],
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"latency-predictor-{space.name}.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{space.name}: held-out MAPE {100 * result['held_out_mape']:.1f} % "
        f"(max {100 * result['held_out_max_ape']:.1f} %, {len(held)} configs), "
        f"leave-one-out {100 * (loo['mape'] or 0):.1f} % -> {out}"
    )


if __name__ == "__main__":
    main()
