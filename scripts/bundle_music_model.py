"""Bundle the better of several music runs into the zoo, from their `edgesep evaluate` results.

Usage: python scripts/bundle_music_model.py NAME RUN_DIR=EVAL_DIR [RUN_DIR=EVAL_DIR ...]
e.g.   edgesep evaluate runs/bsrnn-music-16k/best.safetensors data/music16k -o out/eval/music/bsrnn
       edgesep evaluate runs/liteunet-music-16k/best.safetensors data/music16k \
           -o out/eval/music/liteunet --no-references
       python scripts/bundle_music_model.py music-4stem-16k \
           runs/bsrnn-music-16k=out/eval/music/bsrnn runs/liteunet-music-16k=out/eval/music/liteunet
Each EVAL_DIR holds the summary.json of its run's best model on the test songs. The run with the
highest mean uSDR is written to src/edgesep/zoo/NAME.{safetensors,json}; its card gains its
per-stem test scores, the reference rows (mixture, oracle IRM) of whichever summary has them,
every candidate's scores, and the reproduce commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgesep.models.artifact import load_artifact, read_card, save_artifact
from edgesep.zoo import ZOO_DIR

REPRODUCE = [
    "bash scripts/make_music_data.sh data/music16k",
    "edgesep train configs/train/bsrnn-music-16k.yaml",
    "edgesep train configs/train/liteunet-music-16k.yaml",
    "edgesep evaluate runs/bsrnn-music-16k/best.safetensors data/music16k "
    "-o out/eval/music/bsrnn --threads 1",
    "edgesep evaluate runs/liteunet-music-16k/best.safetensors data/music16k "
    "-o out/eval/music/liteunet --no-references --threads 1",
    "python scripts/bundle_music_model.py music-4stem-16k "
    "runs/bsrnn-music-16k=out/eval/music/bsrnn runs/liteunet-music-16k=out/eval/music/liteunet",
]


def _rounded(scores: dict[str, Any]) -> dict[str, Any]:
    return {
        kind: {k: round(v, 3) if isinstance(v, float) else v for k, v in per_stem.items()}
        for kind, per_stem in scores.items()
    }


def main(name: str, pairs: list[str]) -> None:
    candidates: dict[str, dict[str, Any]] = {}
    runs: dict[str, Path] = {}
    references: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for pair in pairs:
        run, _, eval_dir = pair.partition("=")
        summary = json.loads((Path(eval_dir) / "summary.json").read_text())
        label = Path(run).name
        runs[label] = Path(run)
        candidates[label] = {
            **_rounded(summary["systems"]["model"]),
            "family": summary["model"]["family"],
            "n_params": summary["model"]["n_params"],
            "n_tracks": summary["n_tracks"],
            "data_card_sha256": summary["data"]["card_sha256"],
        }
        for system in ("mixture", "oracle-irm"):
            if system in summary["systems"]:
                references[system] = _rounded(summary["systems"][system])
    best = max(candidates, key=lambda k: candidates[k]["usdr"]["mean"])
    model = load_artifact(runs[best] / "best")
    card = read_card(runs[best] / "best")
    test_name = f"{Path(summary['data']['dir']).name}-{summary['split']}"
    card["metrics"] = {
        **card.get("metrics", {}),
        test_name: {**candidates[best], "references": references},
        "candidates": candidates,
    }
    card.update(name=name, reproduce=REPRODUCE)
    path = save_artifact(model, ZOO_DIR / name, card)
    print(f"bundled {best} as {path}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
