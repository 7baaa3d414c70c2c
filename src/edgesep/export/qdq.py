"""QDQ ONNX export of fake-quantized models, and which ops ONNX Runtime then runs in int8.

A model holding 8-bit fake quantizers (``edgesep.compress.quant``) traces to ONNX with a
QuantizeLinear/DequantizeLinear pair for each of them (torch writes ``fake_quantize_*`` ops
so). :func:`export_qdq` then finishes the graph the way ONNX Runtime's own quantizer would:

- weights: ``QuantizeLinear(float constant)`` is folded into an int8 initializer, so the file
  stores int8 weights (about 4x smaller) and the runtime reads them as they are;
- conv biases: a Conv whose input and weight both come from DequantizeLinear gets its float
  bias replaced by int32 values at scale ``s_x * s_w`` behind a DequantizeLinear, the form ORT
  fuses into QLinearConv.

:func:`int8_report` loads the file in ORT (extended optimisations, one thread), saves the graph
as ORT rewrote it, and counts per op type the nodes that run integer kernels (``QLinear*``,
``ConvInteger``, ``MatMulInteger``, ``QGemm`` ...) against float arithmetic left behind, and the
MACs of every conv/matmul node (weight size x output positions, from one run on ``seconds`` of
input), so the share of MACs in int8 is measured on the graph ORT executes.

References: ONNX Runtime, "Quantize ONNX models" (QDQ format, operator fusion); Jacob et al.,
CVPR 2018 (int32 bias at scale s_x * s_w).
"""

from __future__ import annotations

import collections
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgesep.atomic import atomic_path
from edgesep.export.onnx import INPUT_NAME, INPUT_RMS, OUTPUT_NAME, ParityError, export_onnx
from edgesep.models.base import Separator

INT8_PREFIXES = ("QLinear", "QGemm", "QAttention", "DynamicQuantize")
INT8_OPS = {"ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "QGemm"}
MAC_OPS = {"Conv", "FusedConv", "ConvTranspose", "MatMul", "Gemm", "FusedGemm", "FusedMatMul"}
INT8_MAC_OPS = {"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "QGemm"}
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
# float arithmetic on audio tensors (shape arithmetic on integers is not counted)
FLOAT_COMPUTE = MAC_OPS | {
    "Relu", "PRelu", "LeakyRelu", "Sigmoid", "Tanh", "Mul", "Add", "Sub", "Div", "Sqrt", "Pow",
    "ReduceMean", "BatchNormalization", "Clip", "Erf",
}  # fmt: skip


def constants(graph: Any) -> dict[str, np.ndarray]:
    """Initializers and Constant-node values by name."""
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return out


def _quantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero)."""
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    info = np.iinfo(zero.dtype)
    q = np.rint(x / scale) + zero.astype(np.int64)
    return np.clip(q, info.min, info.max).astype(zero.dtype)


def _axis(node: Any) -> int:
    return next((int(a.i) for a in node.attribute if a.name == "axis"), 1)


def fold_qdq_graph(proto: Any) -> dict[str, int]:
    """In place: int8 weight initializers and int32 conv biases (see the module docstring).
    Returns counts of folded weights and quantized biases."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    consts = constants(graph)
    _fold_min_max(graph, consts)
    folded = 0
    drop: list[Any] = []
    for node in list(graph.node):
        if node.op_type != "QuantizeLinear" or node.input[0] not in consts:
            continue
        if len(node.input) < 3 or node.input[1] not in consts or node.input[2] not in consts:
            continue
        x, scale, zero = consts[node.input[0]], consts[node.input[1]], consts[node.input[2]]
        q = _quantize(x.astype(np.float32), scale, zero, _axis(node) % max(1, x.ndim))
        name = node.output[0]
        graph.initializer.append(numpy_helper.from_array(q, name))
        consts[name] = q
        drop.append(node)
        folded += 1
    for node in drop:
        graph.node.remove(node)
    producer = {o: n for n in graph.node for o in n.output}
    biases = 0
    for node in list(graph.node):
        if node.op_type != "Conv" or len(node.input) < 3 or node.input[2] not in consts:
            continue
        dq_x, dq_w = producer.get(node.input[0]), producer.get(node.input[1])
        if dq_x is None or dq_w is None or {dq_x.op_type, dq_w.op_type} != {"DequantizeLinear"}:
            continue
        if dq_x.input[1] not in consts or dq_w.input[1] not in consts:
            continue
        s_x = consts[dq_x.input[1]].astype(np.float64).reshape(-1)
        s_w = consts[dq_w.input[1]].astype(np.float64).reshape(-1)
        bias = consts[node.input[2]].astype(np.float64)
        scale = (s_x * s_w * np.ones_like(bias)).astype(np.float32)
        q = np.clip(np.rint(bias / scale), -(2**31), 2**31 - 1).astype(np.int32)
        base = node.input[2] + "_int32"
        graph.initializer.extend(
            [
                numpy_helper.from_array(q, base),
                numpy_helper.from_array(scale, base + "_scale"),
                numpy_helper.from_array(np.zeros_like(q), base + "_zero"),
            ]
        )
        dq = helper.make_node(
            "DequantizeLinear",
            [base, base + "_scale", base + "_zero"],
            [base + "_dq"],
            name=base + "_DequantizeLinear",
            axis=0,
        )
        graph.node.insert(list(graph.node).index(node), dq)
        node.input[2] = base + "_dq"
        biases += 1
    _drop_unused_initializers(graph)
    _shorten_names(graph)
    return {"int8_weights": folded, "int32_biases": biases}


def _fold_min_max(graph: Any, consts: dict[str, np.ndarray]) -> None:
    """Evaluate Min/Max nodes of constants (a <8-bit weight's clamp to its grid) in numpy."""
    from onnx import numpy_helper

    ops = {"Min": np.minimum, "Max": np.maximum}
    for node in list(graph.node):
        if node.op_type in ops and all(i in consts for i in node.input):
            value = consts[node.input[0]]
            for other in node.input[1:]:
                value = ops[node.op_type](value, consts[other])
            consts[node.output[0]] = value
            graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
            graph.node.remove(node)


def _shorten_names(graph: Any) -> None:
    """Short names for nodes and internal tensors: the tracer's scoped names
    ('/blocks.0/in_conv/in_quant/QuantizeLinear_output_0') took a third of the int8 file."""
    keep = {v.name for v in [*graph.input, *graph.output]}
    rename: dict[str, str] = {}
    for init in graph.initializer:
        if init.name not in keep:
            rename[init.name] = rename.get(init.name) or f"c{len(rename)}"
            init.name = rename[init.name]
    for node in graph.node:
        for o in node.output:
            if o and o not in keep and o not in rename:
                rename[o] = f"t{len(rename)}"
    for i, node in enumerate(graph.node):
        node.name = f"n{i}"
        for j, name in enumerate(node.input):
            if name in rename:
                node.input[j] = rename[name]
        for j, name in enumerate(node.output):
            if name in rename:
                node.output[j] = rename[name]
    del graph.value_info[:]


def _drop_unused_initializers(graph: Any) -> None:
    """Initializers and Constant nodes nothing reads any more (a folded weight's leftovers)."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for node in list(graph.node):
        if node.op_type == "Constant" and node.output[0] not in used:
            graph.node.remove(node)
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)


def export_qdq(
    model: Separator,
    path: str | os.PathLike[str],
    example_seconds: float = 1.0,
    opset: int = 17,
) -> Path:
    """Export a fake-quantized ``model`` as a QDQ ONNX file with int8 weights; returns the path.

    Every quantizer must be 8-bit (ONNX QuantizeLinear is int8/uint8 here). The file appears
    only when complete.
    """
    import onnx

    out = Path(path)
    with tempfile.TemporaryDirectory(prefix="edgesep-qdq-") as tmp, atomic_path(out) as staged:
        raw = Path(tmp) / "raw.onnx"
        with warnings.catch_warnings():
            # quantizer scales become constants of the trace on purpose
            warnings.filterwarnings("ignore", message="Converting a tensor to a Python")
            warnings.filterwarnings("ignore", message="torch.tensor results are registered")
            export_onnx(model, raw, example_seconds=example_seconds, opset=opset)
        proto = onnx.load(str(raw))
        fold_qdq_graph(proto)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(staged))
    return out


def check_qdq_parity(
    model: Separator,
    path: str | os.PathLike[str],
    seconds: float = 2.0,
    min_db: float = 20.0,
    seed: int = 0,
) -> float:
    """SNR (dB) of the QDQ graph's output in ONNX Runtime against the eager fake-quant model.

    Integer kernels round differently from fake-quant (and saturate 8-bit weights on CPUs
    without VNNI), so parity is a signal-to-noise floor, not an element-wise tolerance. Raises
    :class:`~edgesep.export.onnx.ParityError` below ``min_db``.
    """
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    mix = INPUT_RMS * torch.randn(1, 1, int(seconds * model.sample_rate), generator=gen)
    with torch.no_grad():
        want = model.eval()(mix).numpy().astype(np.float64)
    got = session.run([OUTPUT_NAME], {INPUT_NAME: mix.numpy()})[0].astype(np.float64)
    if got.shape != want.shape:
        raise ParityError(f"{path}: ONNX output shape {got.shape} != eager {want.shape}")
    noise = float(np.sum((got - want) ** 2))
    snr = 10 * np.log10(float(np.sum(want**2)) / max(noise, 1e-30))
    if snr < min_db:
        raise ParityError(
            f"{path}: int8 graph vs fake-quant eager SNR {snr:.1f} dB < {min_db} dB "
            "(8-bit weights saturate ORT's u8s8 kernels on CPUs without VNNI: try weight_bits=7)"
        )
    return float(snr)


def _session(path: Path, optimized: Path | None = None, level: str = "extended") -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    if optimized is not None:
        opts.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _node_macs(graph: Any, path: Path, seconds: float, rate: int) -> dict[str, int]:
    """MACs of each conv/matmul node (by node name) on ``seconds`` of mono input: the weight's
    size times the output positions, output shapes taken from one ORT run of the graph."""
    import onnx
    from onnx import helper

    consts = constants(graph)
    producer = {o: n for n in graph.node for o in n.output}
    for out_name, node in producer.items():  # a float weight behind DequantizeLinear
        if node.op_type == "DequantizeLinear" and node.input[0] in consts:
            consts.setdefault(out_name, consts[node.input[0]])
    targets: list[tuple[Any, int]] = []  # (node, weight input index)
    for node in graph.node:
        if node.op_type in ("QLinearConv",):
            targets.append((node, 3))
        elif node.op_type in ("Conv", "FusedConv", "ConvInteger", "ConvTranspose"):
            targets.append((node, 1))
        elif node.op_type in ("MatMulInteger", "MatMul", "QLinearMatMul", "Gemm"):
            targets.append((node, 3 if node.op_type == "QLinearMatMul" else 1))
    probe = onnx.ModelProto()
    probe.CopyFrom(onnx.load(str(path)))
    existing = {o.name for o in probe.graph.output}
    for node, _ in targets:
        if node.output[0] not in existing:
            probe.graph.output.append(helper.make_empty_tensor_value_info(node.output[0]))
    with tempfile.TemporaryDirectory(prefix="edgesep-macs-") as tmp:
        probe_path = Path(tmp) / "probe.onnx"
        onnx.save(probe, str(probe_path))
        sess = _session(probe_path, level="none")
        names = [o.name for o in sess.get_outputs()]
        n_time = max(1, round(seconds * rate))
        mix = (0.05 * np.random.default_rng(0).standard_normal((1, 1, n_time))).astype(np.float32)
        values = dict(zip(names, sess.run(names, {INPUT_NAME: mix}), strict=True))
    macs: dict[str, int] = {}
    for node, w_index in targets:
        w = consts.get(node.input[w_index]) if len(node.input) > w_index else None
        y = values.get(node.output[0])
        if w is None or y is None:
            continue
        if node.op_type in ("Conv", "FusedConv", "ConvInteger", "QLinearConv"):
            macs[node.name] = int(w.size * y.shape[0] * int(np.prod(y.shape[2:])))
        elif node.op_type == "ConvTranspose":  # every input position meets every weight
            macs[node.name] = int(w.size * y.shape[0] * int(np.prod(y.shape[2:])) // stride(node))
        else:  # matmuls: (..., M, K) x (K, N)
            macs[node.name] = int(w.size * int(np.prod(y.shape[:-1])))
    return macs


def stride(node: Any) -> int:
    strides = next((list(a.ints) for a in node.attribute if a.name == "strides"), [1])
    return int(np.prod(strides))


def int8_report(path: str | os.PathLike[str], seconds: float = 1.0) -> dict[str, Any]:
    """Per op type: nodes ORT runs as int8 vs float in the graph it optimised, and MACs.

    Keys: ``int8_ops`` / ``float_ops`` / ``other_ops`` ({op type: count}), ``qdq_nodes``,
    ``macs_int8``, ``macs_float``, ``int8_mac_share``, ``float_mac_ops`` ({op type: MACs}).
    """
    import onnx

    src = Path(path)
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    rate = int(meta.get("edgesep.sample_rate", "8000"))
    with tempfile.TemporaryDirectory(prefix="edgesep-ort-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        _session(src, optimized)
        proto = onnx.load(str(optimized))
        graph = proto.graph
        inferred = onnx.shape_inference.infer_shapes(proto).graph
        elem = {v.name: v.type.tensor_type.elem_type for v in [*inferred.value_info, *graph.output]}
        macs = _node_macs(graph, optimized, seconds, rate)
    int8_ops: collections.Counter[str] = collections.Counter()
    float_ops: collections.Counter[str] = collections.Counter()
    other: collections.Counter[str] = collections.Counter()
    macs_int8 = macs_float = 0
    float_mac_ops: collections.Counter[str] = collections.Counter()
    for node in graph.node:
        op = node.op_type
        if op.startswith(INT8_PREFIXES) or op in INT8_OPS:
            int8_ops[op] += 1
        elif op in FLOAT_COMPUTE and elem.get(node.output[0], 1) == onnx.TensorProto.FLOAT:
            float_ops[op] += 1
        elif op not in QDQ_OPS:
            other[op] += 1
        n = macs.get(node.name, 0)
        if op in INT8_MAC_OPS:
            macs_int8 += n
        else:
            macs_float += n
            if n:
                float_mac_ops[op] += n
    total = macs_int8 + macs_float
    return {
        "int8_ops": dict(int8_ops),
        "float_ops": dict(float_ops),
        "other_ops": dict(other),
        "qdq_nodes": sum(1 for n in graph.node if n.op_type in QDQ_OPS),
        "macs_int8": macs_int8,
        "macs_float": macs_float,
        "int8_mac_share": macs_int8 / total if total else 0.0,
        "float_mac_ops": dict(float_mac_ops),
        "seconds": seconds,
    }
