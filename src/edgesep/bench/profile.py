"""The edge profile of one target: size, compute, memory, latency and energy, against budgets.

Everything here is measured on the machine running it, except what is labelled otherwise:
figures for reference device profiles are *projections* (measured time scaled by the ratio of
peak MAC rates, :func:`edgesep.bench.devices.project_seconds`), and energy is always an
*estimate* from MACs and bytes moved with the profile's pJ/MAC and pJ/byte.

Latency has two parts, reported apart: the algorithmic latency (what the model must wait for
before it can answer: for a causal model its fixed streaming delay, for a non-causal model the
whole chunk it separates at once) and the compute time of one call (one streaming step, or one
chunk), as p50/p95/p99 over repeated runs after warm-up. Their sum with the p99 is the total
latency the budget checks. The real-time factor is the wall time of separating a whole file
divided by its duration; a causal model also has a streaming one, one step's compute p99 over
the step's duration, which is what its real-time budget checks (a stream must keep up hop by hop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgesep.bench.macs import macs_per_second
from edgesep.bench.targets import Target, artifact_bytes, describe
from edgesep.chunking import CHUNK_SECONDS, OVERLAP_SECONDS

OFFLINE_CHUNK_SECONDS = CHUNK_SECONDS  # what a non-causal model waits for: its whole chunk
OFFLINE_OVERLAP_SECONDS = OVERLAP_SECONDS
NOISE_RMS = 0.05


@dataclass(frozen=True)
class ProfileSettings:
    """How a profile measures; part of every benchmark config and manifest."""

    threads: int = 1
    chunk_seconds: float = 1.0  # compute timing of a non-causal model: one call on this much
    hops_per_step: int = 1  # compute timing of a causal model: one streaming step of these hops
    n_warmup: int = 3
    n_runs: int = 30
    file_seconds: float = 10.0  # real-time factor: a whole file this long
    rtf_runs: int = 3
    memory_seconds: float = 10.0  # peak RAM: one separation of this much audio in a child process
    measure_memory: bool = True
    devices: tuple[str, ...] = (
        "this-machine",
        "rpi5-cortex-a76",
        "rpi3-cortex-a53",
        "stm32h7-cortex-m7",
    )
    seed: int = 0


def _noise(n_time: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (NOISE_RMS * rng.standard_normal(n_time)).astype(np.float32)


def dtype_of(target: Target) -> str:
    """Arithmetic the target runs in: int8 for QDQ graphs, fp32 otherwise."""
    if target.backend != "ort" or target.artifact is None:
        return "fp32"
    import onnx

    graph = onnx.load(str(target.artifact), load_external_data=False).graph
    return "int8" if any(n.op_type == "QuantizeLinear" for n in graph.node) else "fp32"


def algorithmic_ms(target: Target, settings: ProfileSettings) -> float:
    """What the model waits for before answering, in ms (see the module docstring)."""
    ref = target.reference
    if ref.causal:
        samples = ref.stream_delay + (settings.hops_per_step - 1) * ref.stream_hop
    else:
        samples = round(OFFLINE_CHUNK_SECONDS * ref.sample_rate)
    return 1000.0 * samples / ref.sample_rate


def _step_graph(target: Target, settings: ProfileSettings, work: Any) -> Any:
    from edgesep.export import export_step_onnx

    path = work / f"{target.name.replace('/', '_')}.step.onnx"
    if not path.is_file():
        export_step_onnx(target.reference, path, settings.hops_per_step)
    return path


def _activations(target: Target, settings: ProfileSettings, work: Any) -> dict[str, int]:
    """Activation values alive at once in one call of the fp32 graph (edgesep.bench.mcu)."""
    from edgesep.bench.mcu import peak_activation_values
    from edgesep.runtime.model import CHUNK_NAME, Model

    ref = target.reference
    if ref.causal:
        path = _step_graph(target, settings, work)
        model = Model(path)
        step = settings.hops_per_step * ref.stream_hop
        feeds = {CHUNK_NAME: np.zeros((model.info.n_streams, step), np.float32)}
        return peak_activation_values(path, {**feeds, **model.init_state()})
    from edgesep.export import export_onnx

    path = work / f"{target.name.replace('/', '_')}.offline.onnx"
    if not path.is_file():
        export_onnx(ref, path, example_seconds=settings.chunk_seconds)
    n_chunk = max(1, round(settings.chunk_seconds * ref.sample_rate))
    import onnx

    name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    return peak_activation_values(path, {name: _noise(n_chunk, settings.seed)[None, None]})


def _compute_timing(target: Target, settings: ProfileSettings, work: Any) -> tuple[Any, int]:
    """(Timing of one call, samples that call advances); None timing where not measurable."""
    from edgesep.bench import latency

    ref, s = target.reference, settings
    runs = {"threads": s.threads, "n_warmup": s.n_warmup, "n_runs": s.n_runs, "seed": s.seed}
    if ref.causal:
        n_step = s.hops_per_step * ref.stream_hop
        if target.backend == "torch":
            return latency.torch_step_timing(ref, s.hops_per_step, **runs), n_step
        step = _step_graph(target, s, work)
        if dtype_of(target) == "int8":
            from edgesep.export.stream_int8 import quantize_step_int8

            # ranges from speech-level noise: enough for timing the int8 kernels
            calibration = [_noise(8 * n_step, s.seed + 2)]
            step = quantize_step_int8(
                step, step.with_suffix(".int8.onnx"), calibration, s.hops_per_step
            )
        return latency.ort_chunk_timing(step, n_step, **runs), n_step
    n_chunk = max(1, round(s.chunk_seconds * ref.sample_rate))
    if target.backend == "torch":
        return latency.torch_chunk_timing(ref, n_chunk, **runs), n_chunk
    assert target.artifact is not None
    return latency.ort_chunk_timing(target.artifact, n_chunk, **runs), n_chunk


def _rtf(target: Target, settings: ProfileSettings) -> dict[str, Any]:
    from edgesep.bench.latency import real_time_factor

    sr = target.reference.sample_rate
    audio = _noise(round(settings.file_seconds * sr), settings.seed + 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return real_time_factor(
            lambda: target.separator.separate(audio, sr),
            settings.file_seconds,
            n_runs=settings.rtf_runs,
        )
    finally:
        torch.set_num_threads(previous)


def _memory(target: Target, settings: ProfileSettings) -> dict[str, Any] | None:
    from edgesep.bench.memory import peak_rss

    if not settings.measure_memory:
        return None
    model = str(target.artifact) if target.backend == "ort" else target.model
    return peak_rss(target.backend, model, settings.memory_seconds, settings.threads)


def _energy_model(device: Any) -> tuple[float, float, float]:
    return (device.pj_per_mac_fp32, device.pj_per_mac_int8, device.pj_per_byte)


def _mcu(
    target: Target,
    settings: ProfileSettings,
    work: Any,
    device: Any,
    dtype: str,
    n_bytes: int,
    algo: float,
) -> dict[str, Any]:
    """A microcontroller's figures, computed from the model (edgesep.bench.mcu), not timed."""
    from edgesep.bench.devices import check_budgets
    from edgesep.bench.mcu import mcu_figures

    ref = target.reference
    call = (
        settings.hops_per_step * ref.stream_hop
        if ref.causal
        else max(1, round(settings.chunk_seconds * ref.sample_rate))
    )
    call_ms = 1000.0 * call / ref.sample_rate
    figures = mcu_figures(
        device,
        dtype,
        ref.n_params(),
        n_bytes,
        _activations(target, settings, work),
        macs_per_second(ref) * call_ms / 1000.0,
        call_ms,
        algo,
    )
    return {
        "kind": "projected (computed)",
        **figures,
        "budgets": check_budgets(figures, device.budgets),
    }


def profile(target: Target, settings: ProfileSettings, work_dir: Any) -> dict[str, Any]:
    """Measure ``target``; files the profile needs (step graphs) go to ``work_dir``."""
    from edgesep.bench.devices import (
        check_budgets,
        energy_estimate,
        host_profile,
        load_device,
        project_seconds,
    )

    ref = target.reference
    sr = ref.sample_rate
    dtype = dtype_of(target)
    n_bytes = artifact_bytes(target)
    macs = macs_per_second(ref)
    timing, n_call = _compute_timing(target, settings, work_dir)
    rtf = _rtf(target, settings)
    memory = _memory(target, settings)
    algo = algorithmic_ms(target, settings)
    compute_p99 = timing.p99_ms if timing is not None else None
    call_ms = 1000.0 * n_call / sr
    # a stream keeps up only if one step's compute fits in the step: its p99 over the step length
    stream_rtf = compute_p99 / call_ms if ref.causal and compute_p99 is not None else None
    # energy: every call reads all weights once; audio in and sources out at fp32
    calls_per_second = sr / (
        n_call if ref.causal else round((OFFLINE_CHUNK_SECONDS - OFFLINE_OVERLAP_SECONDS) * sr)
    )
    bytes_per_second = n_bytes * calls_per_second + 4 * (1 + ref.n_src) * sr
    host = host_profile()
    devices: dict[str, Any] = {}
    for device_name in settings.devices:
        device = host if device_name == host.name else load_device(device_name)
        if device.flash_mb is not None:
            devices[device.name] = _mcu(target, settings, work_dir, device, dtype, n_bytes, algo)
            if _energy_model(device) != _energy_model(host):
                devices[device.name]["energy"] = energy_estimate(
                    macs, bytes_per_second, device, dtype
                )
            continue
        scale = project_seconds(1.0, host, device, dtype, settings.threads)
        compute = compute_p99 * scale if compute_p99 is not None else None
        figures = {
            "latency_ms": algo + compute if compute is not None else None,
            "model_mb": n_bytes / 1e6,
            "ram_mb": memory["model_rss_mb"] if memory is not None else None,
            "rtf": (stream_rtf if stream_rtf is not None else rtf["median"]) * scale,
        }
        devices[device.name] = {
            "kind": "measured" if device.kind == "host" else "projected",
            "compute_p99_ms": compute,
            **figures,
            "budgets": check_budgets(figures, device.budgets),
        }
        if _energy_model(device) != _energy_model(host):  # its own figures, not the shared ones
            devices[device.name]["energy"] = energy_estimate(macs, bytes_per_second, device, dtype)
    return {
        **describe(target),
        "dtype": dtype,
        "params": ref.n_params(),
        "bytes": n_bytes,
        # a file's size, or 4 bytes per parameter for a target with no file: an estimate
        "bytes_measured": target.artifact is not None,
        "macs_per_second": macs,
        "latency": {
            "threads": settings.threads,
            "call_samples": n_call,
            "call_ms": call_ms,
            "compute": timing.to_dict() if timing is not None else None,
            "algorithmic_ms": algo,
            "total_ms": algo + compute_p99 if compute_p99 is not None else None,
            "rtf": rtf,
            "stream_rtf": stream_rtf,
        },
        "memory": memory,
        # one estimate for every device profile that shares the host's per-operation energies
        # (45 nm, weights from DRAM); a device with its own figures has its own "energy"
        "energy": energy_estimate(macs, bytes_per_second, host, dtype),
        "devices": devices,
    }
