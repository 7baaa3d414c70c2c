"""Score music training runs side by side on the synthetic test songs; bundle the best one.

Usage: python scripts/bundle_music_model.py NAME TEST_ROOT RUN_DIR [RUN_DIR ...]
e.g.   python scripts/bundle_music_model.py music-4stem-16k data/music16k \
           runs/bsrnn-music-16k runs/liteunet-music-16k
Each run's best model is evaluated with ``edgesep evaluate`` (per-stem cSDR and uSDR; the first
run also scores the mixture and the oracle IRM) into out/eval/music/<run>/. The run with the
highest mean uSDR is written to src/edgesep/zoo/NAME.{safetensors,json}; its card gains the test
scores of every candidate and the reproduce commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgesep.evaluate_music import evaluate_music
from edgesep.models.artifact import load_artifact, read_card, save_artifact
from edgesep.zoo import ZOO_DIR

REPRODUCE = [
    "bash scripts/make_music_data.sh data/music16k",
    "edgesep train configs/train/bsrnn-music-16k.yaml",
    "edgesep train configs/train/liteunet-music-16k.yaml",
    "python scripts/bundle_music_model.py music-4stem-16k data/music16k "
    "runs/bsrnn-music-16k runs/liteunet-music-16k",
]


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}


def main(name: str, test_root: str, run_dirs: list[str]) -> None:
    results: dict[str, dict[str, Any]] = {}
    references: dict[str, Any] = {}
    for i, run in enumerate(run_dirs):
        model = load_artifact(Path(run) / "best")
        label = Path(run).name
        report = evaluate_music(
            model,
            test_root,
            split="test",
            out_dir=Path("out/eval/music") / label,
            model_name=label,
            references=i == 0,
        )
        systems = report.summary["systems"]
        results[label] = {k: _round(v) for k, v in systems["model"].items()}
        results[label]["n_params"] = model.n_params()
        results[label]["data_card_sha256"] = report.summary["data"]["card_sha256"]
        if i == 0:
            references = {
                s: {k: _round(v) for k, v in systems[s].items()} for s in ("mixture", "oracle-irm")
            }
        print(label, json.dumps(results[label]))
    best = max(results, key=lambda k: results[k]["usdr"]["mean"])
    run = next(r for r in run_dirs if Path(r).name == best)
    model = load_artifact(Path(run) / "best")
    card = read_card(Path(run) / "best")
    split_name = f"{Path(test_root).name}-test"
    card["metrics"] = {
        **card.get("metrics", {}),
        split_name: {**results[best], "references": references},
        "candidates": results,
    }
    card.update(name=name, reproduce=REPRODUCE)
    path = save_artifact(model, ZOO_DIR / name, card)
    print(f"bundled {best} as {path}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
