"""Which Conv-TasNet choices cost time in ONNX Runtime, and which ops stay float under int8.

Variants of ``convtasnet-tiny`` that swap one choice at a time, then all together (the
``convtasnet-tiny-edge`` config): BatchNorm instead of gLN (placed conv -> BN -> act and folded
into the conv before export), ReLU instead of PReLU, the overlap-add decoder (Conv1d + reshape)
instead of ConvTranspose1d; a last row keeps ConvTranspose1d in the edge variant, to show what
the decoder alone does there. All rows are measured in one run, so the ratios are comparable.

Per variant: fp32 latency of 1 s of 8 kHz audio on one thread (warm-up, then the median of
repeats); then the exported graph is quantized with ``quantize_static`` (QDQ, uint8 activations,
int8 per-channel weights, MinMax calibration on seeded noise at speech level) and timed the same
way. The int8 graph as ORT optimises it is inspected: ops ORT runs in int8 (``QLinear*``,
``QGemm``, ...) are counted apart from float arithmetic ops left behind (the histogram of those is
printed: that is the int8 coverage). ``snr_db`` compares int8 with fp32 output on a held-out noise
input; the ``tiny`` row uses the bundled trained weights (``convtasnet-tiny-8k``), the others are
seeded random initialisations, so only that row's SNR says something about real quantization
error.

Usage: python benchmarks/convtasnet_edge_ort.py [--repeats 30] [--out results.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgesep.atomic import write_text
from edgesep.export import check_parity, export_onnx
from edgesep.models.artifact import load_artifact
from edgesep.models.convtasnet import ConvTasNet
from edgesep.models.convtasnet_fold import fold_batchnorm
from edgesep.models.zoo_registry import build
from edgesep.sysinfo import cpu_description
from edgesep.zoo import DEFAULT_MODEL, ZOO_DIR

RATE = 8000
RMS = 0.05  # -26 dBFS, about normalised speech
BN: dict[str, object] = {"norm": "BN", "norm_order": "norm_act"}
VARIANTS: list[tuple[str, dict[str, object]]] = [
    ("tiny (gLN, PReLU, ConvT)", {}),
    ("+ BN (folded)", BN),
    ("+ ReLU", {"act": "relu"}),
    ("+ OLA decoder", {"decoder": "ola"}),
    ("edge (all three)", {**BN, "act": "relu", "decoder": "ola"}),
    ("edge but ConvT decoder", {**BN, "act": "relu"}),
]
QDQ = {"QuantizeLinear", "DequantizeLinear"}
# arithmetic ops that, when they appear under their float name, run in float32
FLOAT_COMPUTE = {
    "Conv", "ConvTranspose", "FusedConv", "PRelu", "Relu", "LeakyRelu", "Sigmoid", "Mul", "Add",
    "Sub", "Div", "Sqrt", "Pow", "ReduceMean", "BatchNormalization", "MatMul", "Gemm",
}  # fmt: skip


def noise(n_time: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (RMS * rng.standard_normal((1, 1, n_time))).astype(np.float32)


def session(path: Path, optimized: Path | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    if optimized is not None:
        opts.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def latencies_ms(paths: list[Path], repeats: int) -> list[tuple[float, float]]:
    """(median, min) one-thread latency of each graph; runs interleave (round robin), so a
    change in the machine's load during the run touches every graph alike."""
    sessions, mix = [session(p) for p in paths], noise(RATE, 0)
    for sess in sessions:
        for _ in range(5):
            sess.run(None, {"mix": mix})
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(repeats):
        for sess, out in zip(sessions, times, strict=True):
            start = time.perf_counter()
            sess.run(None, {"mix": mix})
            out.append((time.perf_counter() - start) * 1e3)
    return [(statistics.median(t), min(t)) for t in times]


class NoiseReader:
    """Calibration inputs for ``quantize_static``: seeded noise at speech level, 1 s each."""

    def __init__(self, n: int = 8) -> None:
        self.items = iter([{"mix": noise(RATE, 100 + i)} for i in range(n)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def quantize(fp32: Path, out: Path) -> Path:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prep = out.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32), str(prep))
    quantize_static(
        str(prep),
        str(out),
        NoiseReader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    return out


def op_census(path: Path, tmp: Path) -> dict[str, Any]:
    """Op types of the graph as ORT optimises it: int8 kernels vs float arithmetic left over."""
    import onnx

    optimized = tmp / (path.stem + ".opt.onnx")
    session(path, optimized)
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(optimized))).graph
    elem = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.output]}
    counts = collections.Counter(n.op_type for n in graph.node)
    int8 = {k: v for k, v in counts.items() if k.startswith(("QLinear", "QGemm", "QAttention"))}
    # float arithmetic on audio features; integer shape arithmetic (Sub on sizes) does not count
    float_ops = dict(
        collections.Counter(
            n.op_type
            for n in graph.node
            if n.op_type in FLOAT_COMPUTE and elem.get(n.output[0]) == onnx.TensorProto.FLOAT
        )
    )
    n_int8, n_float = sum(int8.values()), sum(float_ops.values())
    return {
        "int8_ops": int8,
        "float_ops": float_ops,
        "qdq_nodes": sum(v for k, v in counts.items() if k in QDQ),
        "int8_share": n_int8 / max(1, n_int8 + n_float),
    }


def snr_db(fp32: Path, int8: Path) -> float:
    mix = noise(RATE, 999)
    ref = session(fp32).run(None, {"mix": mix})[0]
    est = session(int8).run(None, {"mix": mix})[0]
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-20)))


def make(label: str, overrides: dict[str, object]) -> ConvTasNet:
    if not overrides:
        model = load_artifact(ZOO_DIR / DEFAULT_MODEL)  # trained weights, same architecture
        assert isinstance(model, ConvTasNet)
        return model
    torch.manual_seed(0)
    model = build("convtasnet-tiny", **overrides)
    assert isinstance(model, ConvTasNet)
    return fold_batchnorm(model) if model.config.norm == "BN" else model.eval()


def prepare(index: int, label: str, overrides: dict[str, object], tmp: Path) -> dict[str, Any]:
    """Export (parity-checked) and quantize one variant; its census and int8 SNR."""
    model = make(label, overrides)
    stem = tmp / f"variant{index}"
    fp32 = export_onnx(model, stem.with_suffix(".fp32.onnx"), example_seconds=1.0)
    check_parity(model, fp32, lengths=[RATE + 3], batch=1)
    int8 = quantize(fp32, stem.with_suffix(".int8.onnx"))
    return {
        "variant": label,
        "config": {"base": "convtasnet-tiny", **overrides},
        "n_params": model.n_params(),
        "fp32_path": fp32,
        "int8_path": int8,
        "int8_snr_db": snr_db(fp32, int8),
        **op_census(int8, tmp),
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]["fp32_ms"]
    lines = [
        "| variant | params | fp32 ms (min) | vs tiny | int8 ms (min) | int8 speed-up |"
        " int8 share | float ops left in int8 graph | int8 vs fp32 SNR dB |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        left = ", ".join(f"{k} {v}" for k, v in sorted(r["float_ops"].items())) or "none"
        lines.append(
            f"| {r['variant']} | {r['n_params']:,} | {r['fp32_ms']:.1f} ({r['fp32_min_ms']:.1f}) | "
            f"{r['fp32_ms'] / base:.2f} | {r['int8_ms']:.1f} ({r['int8_min_ms']:.1f}) | "
            f"{r['fp32_ms'] / r['int8_ms']:.2f} | "
            f"{r['int8_share']:.0%} | {left} | {r['int8_snr_db']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [prepare(i, label, ov, Path(tmp)) for i, (label, ov) in enumerate(VARIANTS)]
        paths = [r.pop(key) for key in ("fp32_path", "int8_path") for r in rows]
        times = latencies_ms(paths, args.repeats)
    for i, r in enumerate(rows):
        (r["fp32_ms"], r["fp32_min_ms"]), (r["int8_ms"], r["int8_min_ms"]) = (
            times[i],
            times[len(rows) + i],
        )
    print(f"ONNX Runtime, 1 s of 8 kHz audio, 1 thread, median (min) of {args.repeats} runs")
    print(f"host: {cpu_description()}\n")
    print(table(rows))
    if args.out is not None:
        doc = {"host": cpu_description(), "repeats": args.repeats, "rows": rows}
        doc["table_md"] = table(rows)  # what docs/MODELS.md shows (benchmarks/zoo_table.py)
        write_text(args.out, json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
