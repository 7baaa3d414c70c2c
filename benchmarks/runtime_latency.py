"""Streaming cost of a step graph in the torch-free runtime: per-hop compute vs hops per call.

For each hops-per-call k, real-speaker test mixtures (concatenated to ``--seconds``) are pushed
one call's worth at a time through a :class:`~edgesep.runtime.StreamingSession` by the
real-time runner, unpaced, with the real-time schedule simulated (so a run takes its compute
time, not its audio time); see :mod:`edgesep.runtime.realtime`. Per-hop compute is each push's
time over its hops, on the wall clock and on the thread's CPU clock; on a shared machine their
gap is time the scheduler gave to other processes. The k are interleaved in rounds, so a busy
spell of the machine does not fall on one k alone.

Usage: python benchmarks/runtime_latency.py [--model convtasnet-tiny-edge-stream-8k]
       [--hops 1 2 3 4 8] [--seconds 60] [--rounds 2] [--int8 INT8.onnx] [--json out.json]
       [--compare OTHER.onnx ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from edgesep.runtime import Model, StreamingSession
from edgesep.runtime.realtime import RealtimeRunner


def load_audio(mix_dir: Path, seconds: float) -> np.ndarray:
    files = sorted(mix_dir.glob("*.wav"))
    parts, n = [], 0
    i = 0
    while n < seconds * 8000:
        x, _ = sf.read(files[i % len(files)], dtype="float32")
        parts.append(x)
        n, i = n + len(x), i + 1
    return np.concatenate(parts)[: int(seconds * 8000)]


def run(model: Model, x: np.ndarray, k: int) -> dict[str, Any]:
    session = StreamingSession(model, hops_per_step=k, rescale=False)
    runner = RealtimeRunner(session, pace=False)
    step = session.step_samples
    blocks = (x[None, a : a + step] for a in range(0, len(x), step))
    for _ in runner.process(blocks):
        pass
    return runner.report.summary()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="convtasnet-tiny-edge-stream-8k")
    ap.add_argument(
        "--compare",
        nargs="*",
        default=[],
        type=Path,
        help="other step graphs timed in the same rounds at every k (labelled by file stem)",
    )
    ap.add_argument("--int8", default=None, help="also time this int8 step graph at --int8-hops")
    ap.add_argument("--int8-hops", type=int, default=4)
    ap.add_argument("--hops", type=int, nargs="+", default=[1, 2, 3, 4, 8])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mix-dir", type=Path, default=Path("data/mix8k/real-test/mix"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    x = load_audio(args.mix_dir, args.seconds)
    variants = []
    for k in args.hops:
        variants.append(("fp32", Model(args.model, threads=args.threads), k))
        variants += [(p.stem, Model(p, threads=args.threads), k) for p in args.compare]
    if args.int8:
        variants.append(("int8", Model(args.int8, threads=args.threads), args.int8_hops))
    results: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for name, model, k in variants:
            rep = run(model, x, k)
            results.setdefault(f"{name} k={k}", []).append(rep)
            print(f"round {r} {name} k={k}: {json.dumps(rep)}", flush=True)
    print(
        "\n| graph | hops per call | algorithmic latency ms | per-hop p50 / p99 ms (wall) | "
        "p99 share of hop | per-hop p50 / p99 ms (CPU) | CPU p99 share | misses (wall) | "
        "misses (CPU costs) | RTF |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, reps in results.items():
        # the round with the lower wall p99: the less disturbed one
        rep = min(reps, key=lambda d: d["per_hop_p99_ms"])
        print(
            f"| {label.split()[0]} | {rep['hops_per_step']} | {rep['algorithmic_latency_ms']:.2f} "
            f"| {rep['per_hop_p50_ms']:.3f} / {rep['per_hop_p99_ms']:.3f} "
            f"| {100 * rep['per_hop_p99_share_of_hop']:.0f}% "
            f"| {rep['per_hop_cpu_p50_ms']:.3f} / {rep['per_hop_cpu_p99_ms']:.3f} "
            f"| {100 * rep['per_hop_cpu_p99_share_of_hop']:.0f}% "
            f"| {rep['deadline_misses']}/{rep['n_blocks']} "
            f"| {rep['deadline_misses_cpu']}/{rep['n_blocks']} | {rep['rtf']:.3f} |"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
