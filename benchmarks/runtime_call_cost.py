"""What a step-graph call costs in ONNX Runtime at a few frames: per node, per layout, per gap.

Three measurements, one thread, medians over many runs (docs/RUNTIME.md, "What a step-graph
call costs"):

1. single-op graphs on (1, 128, 4) tensors, 40 nodes chained: the cost per node of an
   Identity, a Slice, a 1x1 Conv + ReLU and a history Concat + dilated depthwise Conv;
2. a chain of 24 TCN-like blocks (1x1 conv + ReLU, history concat, depthwise conv + ReLU,
   1x1 conv, residual add, history slice) on (1, C, 4) against the same on (1, C, 1, 4):
   ONNX Runtime rewrites only the 2-D one into its blocked NCHWc layout;
3. the bundled step graph (``--model``) called back to back, and with a 6 ms gap between calls
   spent sleeping or busy-waiting: how much a call loses when the thread paused before it.

Usage: python benchmarks/runtime_call_cost.py [--model convtasnet-tiny-edge-causal-8k]
       [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgesep.bench.latency import time_calls
from edgesep.runtime import Model

RNG = np.random.default_rng(0)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _median_ms(fn: Callable[[], object], n: int = 1000, warm: int = 100) -> float:
    return time_calls(fn, n_warmup=warm, n_runs=n).p50_ms


def _w(inits: list[onnx.TensorProto], name: str, shape: list[int]) -> str:
    inits.append(numpy_helper.from_array((0.05 * RNG.standard_normal(shape)).astype("f4"), name))
    return name


def _i64(inits: list[onnx.TensorProto], name: str, value: int) -> str:
    inits.append(numpy_helper.from_array(np.array([value], np.int64), name))
    return name


def _graph(
    nodes: list[onnx.NodeProto],
    inits: list[onnx.TensorProto],
    inputs: list[tuple[str, list[int]]],
    outputs: list[str],
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def per_node_us(kind: str, n: int = 40, c: int = 128, t: int = 4) -> float:
    """Median cost of one node of ``kind`` in a chain of ``n`` on (1, c, t) tensors."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    cur = "x"
    for i in range(n):
        out = f"y{i}"
        if kind == "Identity":
            nodes.append(helper.make_node("Identity", [cur], [out]))
        elif kind == "Slice":
            args = [_i64(inits, f"s{i}", -t), _i64(inits, f"e{i}", 2**62), _i64(inits, f"a{i}", 2)]
            nodes.append(helper.make_node("Slice", [cur, *args], [out]))
        elif kind == "Conv 1x1 + Relu":
            w, b = _w(inits, f"w{i}", [c, c, 1]), _w(inits, f"b{i}", [c])
            nodes.append(helper.make_node("Conv", [cur, w, b], [f"c{i}"]))
            nodes.append(helper.make_node("Relu", [f"c{i}"], [out]))
        else:  # history Concat + depthwise Conv, dilation 2
            hist, w, b = _w(inits, f"h{i}", [1, c, 4]), _w(inits, f"w{i}", [c, 1, 3]), f"b{i}"
            _w(inits, b, [c])
            nodes.append(helper.make_node("Concat", [hist, cur], [f"c{i}"], axis=2))
            nodes.append(helper.make_node("Conv", [f"c{i}", w, b], [out], group=c, dilations=[2]))
        cur = out
    session = _session(_graph(nodes, inits, [("x", [1, c, t])], [cur]))
    x = RNG.standard_normal((1, c, t)).astype("f4")
    return 1000.0 * _median_ms(lambda: session.run(None, {"x": x})) / n


def block_chain_ms(rank4: bool, n_blocks: int = 24, b: int = 64, h: int = 128, t: int = 4) -> float:
    """Median call of ``n_blocks`` TCN-like blocks (dilations 1..128, cycling) on 4 frames."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    inputs: list[tuple[str, list[int]]] = [("x", [1, b, *([1] if rank4 else []), t])]
    outputs: list[str] = []
    k = [1] if rank4 else []
    axis = 3 if rank4 else 2
    cur = "x"
    for i in range(n_blocks):
        d = 2 ** (i % 8)
        wi, bi = _w(inits, f"wi{i}", [h, b, *k, 1]), _w(inits, f"bi{i}", [h])
        wd, bd = _w(inits, f"wd{i}", [h, 1, *k, 3]), _w(inits, f"bd{i}", [h])
        wr, br = _w(inits, f"wr{i}", [b, h, *k, 1]), _w(inits, f"br{i}", [b])
        inputs.append((f"hist{i}", [1, h, *k, 2 * d]))
        nodes += [
            helper.make_node("Conv", [cur, wi, bi], [f"p{i}"]),
            helper.make_node("Relu", [f"p{i}"], [f"pr{i}"]),
            helper.make_node("Concat", [f"hist{i}", f"pr{i}"], [f"c{i}"], axis=axis),
            helper.make_node(
                "Slice",
                [
                    f"c{i}",
                    _i64(inits, f"s{i}", -2 * d),
                    _i64(inits, f"e{i}", 2**62),
                    _i64(inits, f"a{i}", axis),
                ],
                [f"hist{i}_out"],
            ),
            helper.make_node(
                "Conv", [f"c{i}", wd, bd], [f"q{i}"], group=h, dilations=[1, d] if rank4 else [d]
            ),
            helper.make_node("Relu", [f"q{i}"], [f"qr{i}"]),
            helper.make_node("Conv", [f"qr{i}", wr, br], [f"r{i}"]),
            helper.make_node("Add", [cur, f"r{i}"], [f"x{i}"]),
        ]
        outputs.append(f"hist{i}_out")
        cur = f"x{i}"
    session = _session(_graph(nodes, inits, inputs, [cur, *outputs]))
    feeds = {
        i.name: (0.1 * RNG.standard_normal(i.shape)).astype("f4") for i in session.get_inputs()
    }
    return _median_ms(lambda: session.run(None, feeds))


def gap_ms(model: Model, gap_s: float, spin: bool, n: int = 600) -> float:
    """Median step-graph call (4 hops) after ``gap_s`` of sleeping or busy-waiting."""
    state = model.init_state()
    chunk = (0.05 * RNG.standard_normal((1, 4 * model.info.stream_hop))).astype("f4")
    times = []
    for i in range(n + 50):
        if gap_s and spin:
            end = time.perf_counter() + gap_s
            while time.perf_counter() < end:
                pass
        elif gap_s:
            time.sleep(gap_s)
        t = time.perf_counter()
        _, state = model.step(chunk, state)
        if i >= 50:
            times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="convtasnet-tiny-edge-causal-8k")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out: dict[str, Any] = {"per_node_us": {}, "block_chain_ms": {}, "call_after_gap_ms": {}}
    for kind in ("Identity", "Slice", "Conv 1x1 + Relu", "Concat + depthwise Conv"):
        out["per_node_us"][kind] = round(per_node_us(kind), 2)
        print(f"per node, {kind}: {out['per_node_us'][kind]} us", flush=True)
    for label, rank4 in (("1-D (1, C, 4)", False), ("2-D (1, C, 1, 4)", True)):
        out["block_chain_ms"][label] = round(block_chain_ms(rank4), 3)
        print(f"24 blocks, {label}: {out['block_chain_ms'][label]} ms", flush=True)
    model = Model(args.model)
    for _ in range(2):  # two rounds: a busy spell of the machine does not fall on one row alone
        for label, gap, spin in (
            ("back to back", 0.0, False),
            ("6 ms sleep", 0.006, False),
            ("6 ms busy-wait", 0.006, True),
        ):
            t = gap_ms(model, gap, spin)
            out["call_after_gap_ms"].setdefault(label, []).append(round(t, 3))
            print(f"{args.model} call, {label}: {t:.3f} ms", flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
