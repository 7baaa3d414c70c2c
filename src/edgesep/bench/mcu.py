"""What a model needs of a microcontroller, computed from the model rather than timed on the host.

A microcontroller profile (one with ``flash_mb``) is not projected from x86 timings and a Linux
process's RSS, which say nothing about it. Instead:

- **flash**: the weights at the deployed precision: the artifact's bytes, and never fewer than
  one byte per parameter (int8) or four (fp32);
- **SRAM**: the peak bytes of activations alive at once during one call, from the ONNX graph's
  real intermediate tensors (every node output fetched in one ONNX Runtime call, then a liveness
  walk in the graph's order), plus the streaming state carried between calls; one byte per
  value for int8, four for fp32;
- **compute**: the call's MACs over the peak MAC rate (clock x MACs per cycle), so the figure is
  a lower bound on the time, and the latency and real-time factor built on it are optimistic.

All of it is labelled a projection. Written here because no maintained tool reports activation
memory of an arbitrary ONNX graph on the CPU (TFLite Micro's arena planner needs a .tflite and a
build for the chip).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgesep.errors import InputError


def peak_activation_values(
    path: str | os.PathLike[str], feeds: dict[str, np.ndarray]
) -> dict[str, int]:
    """Peak count of activation values alive at once in one call of the graph at ``path``.

    Graph inputs count until their last use; an output counts from its node until its last
    consumer (graph outputs to the end); initializers (weights, in flash) do not count. Returns
    ``peak_values`` and ``state_values`` (inputs other than the audio, carried between calls).
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    produced = [o for node in graph.node for o in node.output if o]
    have = {o.name for o in graph.output}
    for name in produced:
        if name not in have:
            graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    sizes = {
        n: int(np.asarray(v).size) for n, v in zip(names, session.run(names, feeds), strict=True)
    }
    sizes.update({name: int(np.asarray(v).size) for name, v in feeds.items()})
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in weights:
                last_use[name] = i
    for out in graph.output:
        last_use[out.name] = len(graph.node)
    live = {name: sizes[name] for name in feeds}
    peak = sum(live.values())
    for i, node in enumerate(graph.node):
        for name in node.output:
            if name:
                live[name] = sizes.get(name, 0)
        peak = max(peak, sum(live.values()))
        for name in [n for n in live if last_use.get(n, -1) <= i]:
            del live[name]
    audio = graph.input[0].name
    state = sum(v.size for name, v in feeds.items() if name != audio)
    return {"peak_values": peak, "state_values": int(state)}


def mcu_figures(
    device: Any,
    dtype: str,
    n_params: int,
    n_bytes: int,
    activations: dict[str, int],
    macs_per_call: float,
    call_ms: float,
    algorithmic_ms: float,
) -> dict[str, Any]:
    """The budget figures of a microcontroller ``device`` (a DeviceProfile with ``flash_mb``)."""
    from edgesep.bench.devices import peak_macs_per_second

    if getattr(device, "flash_mb", None) is None:
        raise InputError(f"{device.name}: not a microcontroller profile (no flash_mb)")
    per_value = 1 if dtype == "int8" else 4
    weights = max(n_bytes, n_params * per_value)
    compute_ms = 1e3 * macs_per_call / peak_macs_per_second(device, dtype, 1)
    return {
        "latency_ms": algorithmic_ms + compute_ms,
        "model_mb": weights / 1e6,
        "ram_mb": per_value * activations["peak_values"] / 1e6,
        "rtf": compute_ms / call_ms,
        "compute_p99_ms": compute_ms,
        "flash_mb": weights / 1e6,
        "sram_state_mb": per_value * activations["state_values"] / 1e6,
        "basis": "computed from the model: MACs over peak rate (a lower bound on time), "
        f"weights at {per_value} byte(s) per parameter, live activations per call",
    }
