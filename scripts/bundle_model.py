"""Evaluate a training run's best model on test sets and bundle it into the zoo with its card.

Usage: python scripts/bundle_model.py RUN_DIR NAME TEST_DIR [TEST_DIR ...]
e.g.   python scripts/bundle_model.py runs/convtasnet-tiny-8k convtasnet-tiny-8k \
           data/mix8k/voices-test data/mix8k/real-test data/mix8k/synth-test
Writes src/edgesep/zoo/NAME.{safetensors,json}; the card gains per-test-set metrics (mean and
median SI-SNRi / SDRi of the model, and the oracle IRM for reference) and the reproduce commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from edgesep.evaluate import evaluate
from edgesep.models.artifact import load_artifact, read_card, save_artifact
from edgesep.zoo import ZOO_DIR

# Two stages (docs/TRAINING.md): the architecture study's run, then a cosine decay resumed from
# its checkpoint (ran to max_steps; STOP_STEP reproduces a run stopped by hand, if one ever is).
STOP_STEP = 0  # set when the run is stopped: the last validated step
REPRODUCE = [
    "bash scripts/make_speech_data.sh",
    "edgesep train configs/train/arch8k/convtasnet-tiny.yaml max_cpu_minutes=180",
    "mkdir -p runs/convtasnet-tiny-8k/checkpoints && "
    "cp -r runs/arch8k/convtasnet-tiny/checkpoints/last runs/convtasnet-tiny-8k/checkpoints/",
    "edgesep train configs/train/convtasnet-tiny-8k.yaml --resume"
    + (f" stop_step={STOP_STEP}" if STOP_STEP else ""),
    "python scripts/bundle_model.py runs/convtasnet-tiny-8k convtasnet-tiny-8k "
    "data/mix8k/voices-test data/mix8k/real-test data/mix8k/synth-test",
    "python scripts/make_demo_example.py && python scripts/make_quality_fixture.py && "
    "python benchmarks/docs_tables.py",
]


def _summary(systems: dict[str, Any], system: str) -> dict[str, float]:
    s = systems[system]
    return {
        f"{metric}{suffix}": round(float(s[metric][stat]), 3)
        for metric in ("si_snri", "sdri")
        for suffix, stat in (("", "mean"), ("_median", "median"))
    }


def main(run_dir: str, name: str, test_dirs: list[str]) -> None:
    best = Path(run_dir) / "best"
    model = load_artifact(best)
    card = read_card(best)
    metrics: dict[str, Any] = dict(card.get("metrics", {}))
    for test_dir in test_dirs:
        out = Path("out/eval") / name / Path(test_dir).name
        report = evaluate(model, test_dir, out_dir=out, model_name=name)
        summary = report.summary
        metrics[Path(test_dir).name] = {
            **_summary(summary["systems"], "model"),
            "n_files": summary["n_files"],
            "data_card_sha256": summary["data"]["card_sha256"],
            "oracle_irm": _summary(summary["systems"], "oracle-irm"),
        }
    card.update(name=name, metrics=metrics, reproduce=REPRODUCE)
    path = save_artifact(model, ZOO_DIR / name, card)
    print(f"bundled {path}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
