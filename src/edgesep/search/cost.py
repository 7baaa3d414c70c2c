"""What one candidate costs on this machine, measured: parameters, bytes of its ONNX graph, MACs,
per-op MACs of one call (the latency predictor's features), ONNX Runtime latency of one call on
one thread, and optionally peak RAM; then its budgets.

One call is what a deployed model runs at a time: a non-causal model one chunk of
``call_seconds``, a causal model one streaming step of ``hops_per_step`` hops (its step graph).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgesep.bench.devices import host_profile, load_device, project_seconds
from edgesep.bench.latency import ort_chunk_timing
from edgesep.bench.macs import count_macs, macs_per_second
from edgesep.bench.memory import peak_rss
from edgesep.export import export_onnx, export_step_onnx
from edgesep.models.base import Separator
from edgesep.search.space import PRE_TRAINING_BUDGETS, Cost

_OP_GROUPS = {  # aten op -> predictor feature
    "convolution": "conv",
    "_convolution": "conv",
    "conv1d": "conv",
    "conv2d": "conv",
    "convolution_backward": "conv",
    "mm": "matmul",
    "addmm": "matmul",
    "bmm": "matmul",
    "baddbmm": "matmul",
    "matmul": "matmul",
    "_scaled_dot_product_flash_attention": "matmul",
    "rnn": "rnn",
}
FEATURES = ("conv", "matmul", "rnn", "other", "n_nodes")


def call_samples(model: Separator, cost: Cost) -> int:
    if model.causal:
        return cost.hops_per_step * int(model.stream_hop)
    return max(1, round(cost.call_seconds * model.sample_rate))


@contextlib.contextmanager
def written_elements(model: torch.nn.Module) -> Iterator[list[int]]:
    """Count, in ``[total]``, the elements written by the leaf modules of the forwards run
    inside: the memory traffic of the element-wise work (norms, activations, masks) that MACs
    do not count."""
    total = [0]

    def count(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        outs = output if isinstance(output, tuple) else (output,)
        total[0] += sum(o.numel() for o in outs if isinstance(o, torch.Tensor))

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        yield total
    finally:
        for h in hooks:
            h.remove()


def static_cost(model: Separator, cost: Cost) -> dict[str, Any]:
    """What needs no export: params, MACs per second of audio, MACs of one call per op group,
    and the elements its leaf modules write in one call."""
    n_call = call_samples(model, cost)
    with written_elements(model) as elements:  # counted on the same forward as the MACs
        per_op = count_macs(model, torch.zeros(1, 1, max(n_call, 16)))
    groups = dict.fromkeys(FEATURES[:-1], 0)
    for op, n in per_op.items():
        if op != "total":
            groups[_OP_GROUPS.get(op, "other")] += n
    return {
        "params": model.n_params(),
        "macs_per_second": macs_per_second(model, seconds=1.0),
        "call_samples": n_call,
        "call_macs": groups,
        "activation_elems": elements[0],
    }


def measured_cost(model: Separator, cost: Cost, work: Path) -> dict[str, Any]:
    """Export ``model`` to ``work`` and measure its graph: bytes, nodes, latency, RAM."""
    import onnx

    work.mkdir(parents=True, exist_ok=True)
    n_call = call_samples(model, cost)
    if model.causal:
        graph = export_step_onnx(model, work / "step.onnx", cost.hops_per_step)
        size_graph = export_onnx(model, work / "model.onnx")
    else:
        graph = size_graph = export_onnx(model, work / "model.onnx", example_seconds=1.0)
    timing = ort_chunk_timing(
        graph, n_call, threads=cost.threads, n_warmup=cost.n_warmup, n_runs=cost.n_runs
    )
    proto = onnx.load(str(graph), load_external_data=False).graph
    n_nodes = len(proto.node)
    out: dict[str, Any] = {
        "bytes": size_graph.stat().st_size,
        "n_nodes": n_nodes,
        # a step graph reads and rewrites its state every call: the ring buffers' elements
        "state_elems": _state_elements(proto) if model.causal else 0,
        "compute_ms": timing.p50_ms,
        "compute_p99_ms": timing.p99_ms,
        "call_ms": 1000.0 * n_call / model.sample_rate,
        "algorithmic_ms": 1000.0
        * (
            model.stream_delay + (cost.hops_per_step - 1) * model.stream_hop
            if model.causal
            else n_call
        )
        / model.sample_rate,
        "ram_mb": None,
    }
    out["latency_ms"] = out["algorithmic_ms"] + out["compute_p99_ms"]
    out["rtf"] = out["compute_p99_ms"] / out["call_ms"]
    if cost.measure_memory:
        rss = peak_rss("ort", graph, cost.memory_seconds, cost.threads)
        out["ram_mb"] = rss["model_rss_mb"]
    return out


def _state_elements(graph: Any) -> int:
    """Elements of a step graph's inputs after the audio (its carried state), static dims."""
    total = 0
    for value in graph.input[1:]:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        total += int(np.prod([d for d in dims if d > 0])) if dims else 1
    return total


def budget_values(figures: dict[str, Any]) -> dict[str, float | None]:
    """Each budget key's figure (MB are 1e6 bytes; MMAC per second of audio)."""
    return {
        "compute_ms": figures.get("compute_p99_ms"),
        "latency_ms": figures.get("latency_ms"),
        "model_mb": figures["bytes"] / 1e6 if "bytes" in figures else figures["params"] * 4 / 1e6,
        "ram_mb": figures.get("ram_mb"),
        "rtf": figures.get("rtf"),
        "mmacs": figures["macs_per_second"] / 1e6,
    }


def check(
    figures: dict[str, Any], budgets: dict[str, float], keys: tuple[str, ...] | None = None
) -> dict[str, float]:
    """Optuna constraint values (<= 0 passes) of the budgets among ``keys`` that have a figure."""
    values = budget_values(figures)
    out = {}
    for key, limit in budgets.items():
        if keys is not None and key not in keys:
            continue
        value = values.get(key)
        if value is not None:
            out[key] = float(value) - float(limit)
    return out


def pre_training_reject(figures: dict[str, Any], budgets: dict[str, float]) -> str | None:
    """Why a config is refused before training (MACs or bytes over budget), or None."""
    over = {k: v for k, v in check(figures, budgets, PRE_TRAINING_BUDGETS).items() if v > 0}
    if not over:
        return None
    values = budget_values(figures)
    return "; ".join(f"{k} {values[k]:.3g} > {budgets[k]:.3g}" for k in over)


def device_budgets(name: str) -> dict[str, float]:
    """A device profile's budgets as search budgets (latency_ms, model_mb, ram_mb, rtf)."""
    b = load_device(name).budgets
    return {"latency_ms": b.latency_ms, "model_mb": b.model_mb, "ram_mb": b.ram_mb, "rtf": b.rtf}


def projected_compute_ms(
    compute_ms: float, devices: tuple[str, ...], threads: int = 1
) -> dict[str, float]:
    """One call's compute time on reference devices: a projection by peak MAC rate."""
    host = host_profile()
    return {
        d: project_seconds(compute_ms / 1000.0, host, load_device(d), "fp32", threads) * 1000.0
        for d in devices
    }
