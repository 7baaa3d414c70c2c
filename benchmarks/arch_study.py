"""The architecture study: which small family learns most per CPU-hour (docs/ARCHITECTURES.md).

Every run of configs/train/arch8k/ trains on the same data with the same recipe and a budget of
process CPU time, one thread each. This reads their logs (runs/arch8k/<config>/log.jsonl),
reads each run's score on the unseen real speakers from
``benchmarks/results/voices-test/arch8k-<config>.summary.json`` (written by ``edgesep evaluate
runs/arch8k/<config>/best data/mix8k/voices-test --no-references -o DIR``; ``--test DIR`` runs
that evaluation for runs that have none yet), and writes:

- docs/arch/arch8k.png: validation SI-SNRi against training CPU-minutes, all runs in one plot;
- benchmarks/results/arch8k.json: the table below, with the curves;
- the table between the ``arch-table`` markers of docs/ARCHITECTURES.md.

    python benchmarks/arch_study.py [--runs runs/arch8k] [--test data/mix8k/voices-test]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURES.md"
PNG = ROOT / "docs" / "arch" / "arch8k.png"
RESULT = ROOT / "benchmarks" / "results" / "arch8k.json"
BEGIN, END = "<!-- arch-table: begin -->", "<!-- arch-table: end -->"


def read_run(run: Path) -> dict[str, Any]:
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    steps = [e for e in lines if "loss" in e]
    evals = [e for e in lines if "valid" in e]
    cfg = json.loads((run / "config.json").read_text())
    return {
        "config": run.name,
        "model": cfg["model"],
        "steps": steps[-1]["step"] if steps else 0,
        "cpu_minutes": evals[-1]["cpu_minutes"] if evals else 0.0,
        "curve": [[e["cpu_minutes"], round(e["valid"]["mean"], 3), e["step"]] for e in evals],
        "best_valid_db": max((e["valid"]["mean"] for e in evals), default=float("nan")),
    }


SCORES = ROOT / "benchmarks" / "results" / "voices-test"


def score_test(run: Path, test_dir: str | None) -> dict[str, float]:
    """The best model's SI-SNRi on the test set: from its committed summary, else evaluated."""
    path = SCORES / f"arch8k-{run.name}.summary.json"
    if not path.is_file() and test_dir and (run / "best.safetensors").is_file():
        import shutil
        import tempfile

        import torch

        from edgesep.evaluate import evaluate

        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            evaluate(str(run / "best"), test_dir, tmp, references=False, progress=False)
            shutil.copy(Path(tmp) / "summary.json", path)
    if not path.is_file():
        return {}
    model = json.loads(path.read_text())["systems"]["model"]["si_snri"]
    return {"test_mean_db": model["mean"], "test_median_db": model["median"]}


def model_costs(name: str) -> dict[str, float]:
    from edgesep.bench.macs import macs_per_second
    from edgesep.models.zoo_registry import build

    model = build(name)
    return {"params": model.n_params(), "gmacs_per_s": macs_per_second(model) / 1e9}


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| config | params | GMAC/s | steps in budget | CPU-min | best valid SI-SNRi (dB) "
        "| unseen-real test mean / median (dB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: -r["best_valid_db"]):
        test = (
            f"{r['test_mean_db']:.2f} / {r['test_median_db']:.2f}" if "test_mean_db" in r else "-"
        )
        out.append(
            f"| {r['model']} | {r['params'] / 1e3:.0f} k | {r['gmacs_per_s']:.2f} | {r['steps']} "
            f"| {r['cpu_minutes']:.0f} | {r['best_valid_db']:.2f} | {test} |"
        )
    return "\n".join(out)


def plot(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in sorted(rows, key=lambda r: r["model"]):
        xs, ys = [c[0] for c in r["curve"]], [c[1] for c in r["curve"]]
        ax.plot(xs, ys, marker=".", label=f"{r['model']} ({r['params'] / 1e3:.0f} k)")
    ax.set_xlabel("training CPU-minutes (one thread)")
    ax.set_ylabel("validation SI-SNRi (dB), unseen real speakers")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "arch8k")
    ap.add_argument("--test", help="score each best model on this mixture folder")
    args = ap.parse_args()
    rows = []
    for run in sorted(p for p in args.runs.iterdir() if (p / "log.jsonl").is_file()):
        row = read_run(run)
        row.update(model_costs(row["model"]))
        row.update(score_test(run, args.test))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}))
    RESULT.write_text(json.dumps({"test_dir": args.test, "runs": rows}, indent=2) + "\n")
    plot(rows)
    doc = DOC.read_text()
    new = f"{BEGIN}\n{table(rows)}\n{END}"
    pattern = re.escape(BEGIN) + ".*?" + re.escape(END)
    DOC.write_text(re.sub(pattern, lambda _: new, doc, flags=re.S))
    print(f"wrote {RESULT}, {PNG} and the table of {DOC}")


if __name__ == "__main__":
    main()
