"""Bundle a trained causal model for streaming: test scores, card, weights and its step graph.

Usage: python scripts/bundle_stream_model.py RUN_DIR NAME TEST_DIR [TEST_DIR ...] [--hops K]
e.g.   python scripts/bundle_stream_model.py runs/issue7-edge-causal-8k \
           convtasnet-tiny-edge-causal-8k data/mix8k/synth-test data/mix8k/real-test
Writes src/edgesep/zoo/NAME.{safetensors,json} (as scripts/bundle_model.py: the card gains
per-test-set metrics and the reproduce commands) and NAME.onnx: the model's dynamic-length
streaming step graph (K hops per call by default), checked against eager PyTorch. The card
(shared by both files) records the streaming settings.

       python scripts/bundle_stream_model.py --graph-only NAME
re-exports only NAME.onnx from the bundled weights (after a change to the step graph's export;
the weights, card and scores stay as they are).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bundle_model import _summary  # scripts/ is on sys.path when run as a script

from edgesep.evaluate import evaluate
from edgesep.export.streaming import check_step_parity, export_step_onnx
from edgesep.models.artifact import load_artifact, read_card, save_artifact
from edgesep.zoo import ZOO_DIR

REPRODUCE = {
    "convtasnet-tiny-edge-causal-8k": [
        "bash scripts/make_speech_data.sh",
        "edgesep train configs/train/zoo-budget-8k.yaml model=convtasnet-tiny-edge-causal "
        "out_dir=runs/zoo-budget/convtasnet-tiny-edge-causal",
        "mkdir -p runs/issue7-edge-causal-8k && "
        "cp -r runs/zoo-budget/convtasnet-tiny-edge-causal/. runs/issue7-edge-causal-8k/",
        "edgesep train configs/train/convtasnet-tiny-edge-causal-8k.yaml --resume",
        "python scripts/bundle_stream_model.py runs/issue7-edge-causal-8k "
        "convtasnet-tiny-edge-causal-8k data/mix8k/synth-test data/mix8k/real-test",
    ],
    "convtasnet-tiny-edge-stream-8k": [
        "bash scripts/make_speech_data.sh",
        "edgesep train configs/train/convtasnet-tiny-edge-stream-8k.yaml",
        "python scripts/bundle_stream_model.py runs/issue7-edge-stream-8k "
        "convtasnet-tiny-edge-stream-8k data/mix8k/synth-test data/mix8k/real-test",
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, nargs="?")
    ap.add_argument("name", nargs="?")
    ap.add_argument("test_dirs", nargs="*")
    ap.add_argument("--hops", type=int, default=4, help="hops per call of the step graph")
    ap.add_argument("--graph-only", metavar="NAME", help="re-export NAME.onnx only")
    args = ap.parse_args()
    if args.graph_only:
        export_graph(args.graph_only, read_card(ZOO_DIR / args.graph_only))
        return
    if args.run_dir is None or args.name is None or not args.test_dirs:
        ap.error("give RUN_DIR NAME TEST_DIR [TEST_DIR ...], or --graph-only NAME")
    best = args.run_dir / "best"
    model = load_artifact(best)
    if not model.causal:
        raise SystemExit(f"{best}: not a causal model")
    card = read_card(best)
    metrics: dict[str, Any] = dict(card.get("metrics", {}))
    for test_dir in args.test_dirs:
        out = Path("out/eval") / args.name / Path(test_dir).name
        summary = evaluate(model, test_dir, out_dir=out, model_name=args.name).summary
        metrics[Path(test_dir).name] = {
            **_summary(summary["systems"], "model"),
            "n_files": summary["n_files"],
            "data_card_sha256": summary["data"]["card_sha256"],
            "oracle_irm": _summary(summary["systems"], "oracle-irm"),
        }
        print(Path(test_dir).name, metrics[Path(test_dir).name], flush=True)
    delay = model.stream_core_delay + args.hops * model.stream_hop - 1
    card.update(
        name=args.name,
        metrics=metrics,
        reproduce=REPRODUCE.get(args.name, card.get("reproduce", [])),
        streaming={
            "onnx": f"{args.name}.onnx",
            "graph": "stream_step, dynamic hops per call",
            "stream_hop_samples": model.stream_hop,
            "hops_per_step": args.hops,
            "delay_samples": delay,
            "algorithmic_latency_ms": round(1000 * delay / model.sample_rate, 3),
        },
    )
    save_artifact(model, ZOO_DIR / args.name, card)
    export_graph(args.name, card)


def export_graph(name: str, card: dict[str, Any]) -> None:
    """NAME.onnx from the bundled NAME weights, at the card's hops per call."""
    model = load_artifact(ZOO_DIR / name)
    hops = int(card["streaming"]["hops_per_step"])
    onnx_path = export_step_onnx(model, ZOO_DIR / f"{name}.onnx", hops, dynamic=True)
    worst = check_step_parity(model, onnx_path)
    print(f"bundled {ZOO_DIR / name}.{{safetensors,json,onnx}}; step parity {worst:.2e}")


if __name__ == "__main__":
    main()
