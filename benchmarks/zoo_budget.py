"""The zoo's fixed-budget comparison: every 8 kHz speech config, same data, seed and steps.

Each config is trained with configs/train/zoo-budget-8k.yaml (only ``model`` and ``out_dir``
change), its best-validation weights are scored on the synthetic and the real-speaker test sets,
and the scores are merged into benchmarks/results/zoo-budget-8k.json (written atomically after
each model, so an interrupted run keeps what it finished; finished models are skipped on rerun).
docs/MODELS.md is then written from that file by benchmarks/zoo_table.py.

Usage: python benchmarks/zoo_budget.py [NAME ...] [--steps N] [--threads 1]
Needs the speech data: bash scripts/make_speech_data.sh
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from edgesep.atomic import write_text
from edgesep.config import apply_overrides, from_dict, load_file
from edgesep.evaluate import evaluate
from edgesep.models.zoo_registry import list_configs
from edgesep.sysinfo import cpu_description
from edgesep.train.loop import TrainConfig, train

RECIPE = Path("configs/train/zoo-budget-8k.yaml")
RESULTS = Path("benchmarks/results/zoo-budget-8k.json")
TEST_DIRS = ("data/mix8k/synth-test", "data/mix8k/real-test")


def speech_configs() -> list[str]:
    """Registered 8 kHz, 2-source configs, without test-sized and paper-sized ones."""
    names = []
    for name, named in list_configs():
        cfg = named.config
        edge_speech = cfg.sample_rate == 8000 and cfg.n_src == 2
        if edge_speech and not name.endswith("-test") and "paper" not in name:
            names.append(name)
    return names


def run_one(name: str, steps: int, threads: int) -> dict[str, Any]:
    out_dir = Path("runs/zoo-budget") / name
    overrides = [f"model={name}", f"out_dir={out_dir}", f"max_steps={steps}"]
    overrides.append(f"threads={threads}")
    cfg = from_dict(TrainConfig, apply_overrides(load_file(RECIPE), overrides))
    start = time.monotonic()
    best = train(cfg, resume=(out_dir / "checkpoints" / "last").exists())
    train_minutes = (time.monotonic() - start) / 60
    log = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    best_step = max((e for e in log if "valid" in e), key=lambda e: e["valid"]["mean"])["step"]
    row: dict[str, Any] = {
        "steps": steps,
        "best_step": best_step,
        "train_minutes_this_call": round(train_minutes, 1),
        "threads": threads,
    }
    for test_dir in TEST_DIRS:
        report = evaluate(best, test_dir, out_dir=out_dir / "eval" / Path(test_dir).name)
        systems = report.summary["systems"]
        row[Path(test_dir).name] = {
            system: {m: round(systems[system][m]["mean"], 2) for m in ("si_snri", "sdri")}
            for system in ("model", "oracle-irm")
            if system in systems
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="configs (default: every 8 kHz speech config)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    names = args.names or speech_configs()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"models": {}}
    results["recipe"] = str(RECIPE)
    results["machine"] = cpu_description()
    for name in names:
        done = results["models"].get(name, {})
        if done.get("steps") == args.steps:
            print(f"{name}: done already ({RESULTS})")
            continue
        row = run_one(name, args.steps, args.threads)
        # re-read before writing: another process may be filling in other configs
        if RESULTS.exists():
            results["models"] = {**json.loads(RESULTS.read_text())["models"], name: row}
        else:
            results["models"][name] = row
        write_text(RESULTS, json.dumps(results, indent=2) + "\n")
        print(f"{name}: {results['models'][name]}")


if __name__ == "__main__":
    main()
