"""The edge variant in ONNX Runtime: fp32 vs our QDQ int8 export vs ORT's quantize_static.

For the trained ``convtasnet-tiny-edge`` budget checkpoint: the fp32 graph (BatchNorms folded),
the int8 QDQ graph exported from our fake-quant model (``quantize-ptq``: uint8 activations,
per-channel weights in ``--weight-bits`` (7 = ORT's reduce_range, the default: ORT's u8s8
kernels on AVX2 without VNNI saturate with 8-bit weights), min-max ranges from 8 x 4 training
mixtures), and, for reference, ORT's own ``quantize_static`` of the fp32 graph (the previous
int8 path, :mod:`edgesep.export.int8`, calibrated on the same mixtures).

Per graph: file size, the int8 census of the graph ORT optimises (:func:`int8_report`: op types
in int8 and in float, share of MACs in int8), one-thread latency of 1 s of 8 kHz audio (runs
interleaved round robin so load changes hit every graph alike; median, p99 and min), and mean
SI-SNRi on ``--test-max`` mixtures of each test set run through ORT.

Usage: python benchmarks/quant_edge_ort.py [--repeats 200] [--test-max 100]
       [--out out/quant-edge-ort.json]
Needs the speech data (`make data`) and the budget checkpoint of convtasnet-tiny-edge
(`python benchmarks/zoo_budget.py convtasnet-tiny-edge`); docs/QUANTIZATION.md's figures are in
benchmarks/results/quant-edge-ort.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from needs import require

from edgesep.atomic import write_text
from edgesep.compress import PassContext, make_pass, run_pass
from edgesep.data.datasets import MixtureDataset
from edgesep.data.dynamic import DynamicMixConfig, PoolConfig
from edgesep.export.int8 import quantize_int8
from edgesep.export.onnx import export_onnx
from edgesep.export.qdq import export_qdq, int8_report
from edgesep.metrics.pit import best_permutation
from edgesep.metrics.sisnr import si_snr
from edgesep.models.artifact import load_artifact
from edgesep.sysinfo import cpu_description
from edgesep.train.finetune import FitConfig, make_calibration, make_fit

EDGE = "runs/zoo-budget/convtasnet-tiny-edge/best"
TEST_DIRS = ("data/mix8k/synth-test", "data/mix8k/real-test")


def session(path: Path) -> Any:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def latencies(paths: list[Path], repeats: int) -> list[dict[str, float]]:
    sessions = [session(p) for p in paths]
    mix = (0.05 * np.random.default_rng(0).standard_normal((1, 1, 8000))).astype(np.float32)
    for s in sessions:
        for _ in range(10):
            s.run(None, {"mix": mix})
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(repeats):
        for s, out in zip(sessions, times, strict=True):
            t0 = time.perf_counter()
            s.run(None, {"mix": mix})
            out.append((time.perf_counter() - t0) * 1e3)
    return [
        {
            "median_ms": statistics.median(t),
            "p99_ms": float(np.percentile(t, 99)),
            "min_ms": min(t),
        }
        for t in times
    ]


def quality(path: Path, test_max: int) -> dict[str, float]:
    """Mean SI-SNRi (dB) of the ORT graph on each test set."""
    sess = session(path)
    out: dict[str, float] = {}
    for d in TEST_DIRS:
        ds = MixtureDataset(d, max_items=test_max or None)
        scores = []
        for i in range(len(ds)):
            item = ds[i]
            mix = item["mix"].astype(np.float32)
            est = torch.from_numpy(sess.run(None, {"mix": mix[None, None]})[0])[:, :, 0]
            ref = torch.from_numpy(item["sources"])[None]
            _, best = best_permutation(est, ref, si_snr)
            base = si_snr(torch.from_numpy(mix)[None, None].expand_as(ref), ref).mean()
            scores.append(float(best[0] - base))
        out[Path(d).name] = float(np.mean(scores))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=EDGE)
    parser.add_argument("--weight-bits", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--test-max", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("out/quant-edge-ort.json"))
    args = parser.parse_args()
    require(["data/speech8k-synth", "data/speech8k-real", *TEST_DIRS])
    if args.model == EDGE:
        require(
            [f"{EDGE}.safetensors"],
            "train it: `python benchmarks/zoo_budget.py convtasnet-tiny-edge` (after make data)",
        )
    torch.set_num_threads(1)
    model = load_artifact(args.model)
    data = DynamicMixConfig(
        pools=(
            PoolConfig("data/speech8k-synth", "train", 1.0),
            PoolConfig("data/speech8k-real", "train", 1.0),
        ),
        segment_seconds=2.0,
    )
    fit = make_fit(FitConfig(data=data, valid_dirs=()), progress=False)
    calibration = make_calibration(fit, 8, 4)
    ctx = PassContext(calibration=calibration, progress=False)
    spec = {"pass": "quantize-ptq", "weight_bits": args.weight_bits}
    quantized = run_pass(make_pass(spec), model, ctx).model
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {
            "fp32": export_onnx(model, Path(tmp) / "fp32.onnx"),
            "int8 (ours, QDQ export)": export_qdq(quantized, Path(tmp) / "qdq.onnx"),
        }
        clips = [m[0].numpy() for batch in calibration() for m in batch]
        paths["int8 (ORT quantize_static)"] = quantize_int8(
            paths["fp32"], Path(tmp) / "ort-static.onnx", clips
        )
        for name, path in paths.items():
            scores = quality(path, args.test_max)
            rows[name] = {"bytes": path.stat().st_size, "test_si_snri": scores}
            if name != "fp32":
                rows[name]["census"] = int8_report(path)
            print(name, json.dumps(rows[name]), flush=True)
        for name, lat in zip(paths, latencies(list(paths.values()), args.repeats), strict=True):
            rows[name]["latency"] = lat
    base = rows["fp32"]
    for r in rows.values():
        r["speedup_vs_fp32"] = base["latency"]["median_ms"] / r["latency"]["median_ms"]
        r["size_ratio_vs_fp32"] = base["bytes"] / r["bytes"]
    doc = {
        "host": cpu_description(),
        "model": args.model,
        "weight_bits": args.weight_bits,
        "repeats": args.repeats,
        "test_max": args.test_max,
        "rows": rows,
    }
    write_text(args.out, json.dumps(doc, indent=2) + "\n")
    for name, r in rows.items():
        print(
            f"{name:28s} {r['bytes'] / 1e6:.2f} MB  x{r['size_ratio_vs_fp32']:.2f} smaller  "
            f"median {r['latency']['median_ms']:.2f} ms  p99 {r['latency']['p99_ms']:.2f}  "
            f"speed-up {r['speedup_vs_fp32']:.2f}  SI-SNRi {r['test_si_snri']}"
        )


if __name__ == "__main__":
    main()
