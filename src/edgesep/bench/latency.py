"""Wall-clock latency of a model call, in ONNX Runtime or torch, and real-time factors.

Latency here is what one call costs on the calling thread: ``time.perf_counter`` around each
call after a few warm-up calls (first calls pay for allocation, kernel selection, page faults),
summarised by percentiles, because on a shared or throttling CPU the tail (p95, p99) decides
whether a stream keeps up, not the mean. Threads are pinned per measurement (one by default,
as on a small edge core) and torch's global thread count is restored afterwards.

Streaming step graphs are timed as a real stream: each call feeds the state the previous call
returned, so every call costs what a steady-state hop costs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from edgesep.bench.memprobe import (
    INPUT_RMS,
    OrtStream,
    is_step_graph,
    noise,
    offline_input_shape,
    ort_session,
)
from edgesep.errors import InputError

if TYPE_CHECKING:
    from edgesep.models.base import Separator

__all__ = [
    "Timing",
    "is_step_graph",
    "ort_chunk_timing",
    "ort_session",
    "real_time_factor",
    "time_calls",
    "timing_from_seconds",
    "torch_chunk_timing",
    "torch_step_timing",
]


@dataclass(frozen=True)
class Timing:
    """Wall-clock times of repeated calls, in milliseconds."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    n_runs: int

    def to_dict(self) -> dict[str, float | int]:
        """The fields, times rounded to 4 decimals (0.1 µs: below any timer's resolution)."""
        return {k: v if isinstance(v, int) else round(v, 4) for k, v in asdict(self).items()}


def timing_from_seconds(samples: Sequence[float]) -> Timing:
    """Summarise per-call durations given in seconds (percentiles linearly interpolated)."""
    if len(samples) == 0:
        raise InputError("timing_from_seconds needs at least one sample")
    ms = 1000.0 * np.asarray(samples, dtype=np.float64)
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return Timing(
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        n_runs=len(ms),
    )


def _check_runs(n_warmup: int, n_runs: int) -> None:
    if n_runs < 1:
        raise InputError(f"n_runs must be at least 1, got {n_runs}")
    if n_warmup < 0:
        raise InputError(f"n_warmup must be non-negative, got {n_warmup}")


def time_calls(fn: Callable[[], object], n_warmup: int = 3, n_runs: int = 30) -> Timing:
    """Call ``fn`` ``n_warmup`` times untimed, then ``n_runs`` times, each timed alone."""
    _check_runs(n_warmup, n_runs)
    for _ in range(n_warmup):
        fn()
    samples = []
    for _ in range(n_runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return timing_from_seconds(samples)


def ort_chunk_timing(
    path: str | os.PathLike[str],
    n_time: int,
    threads: int = 1,
    n_warmup: int = 3,
    n_runs: int = 30,
    seed: int = 0,
) -> Timing:
    """Latency of one ONNX Runtime call on the file at ``path``.

    An offline graph runs its input (1, C, ``n_time``) of seeded noise (C from the graph, 1 if
    symbolic). A step graph ignores ``n_time``: each call is one step of the graph's own chunk
    shape, states starting at zeros and carried from call to call.
    """
    _check_runs(n_warmup, n_runs)
    if n_time < 1:
        raise InputError(f"n_time must be at least 1, got {n_time}")
    session = ort_session(path, threads)
    if is_step_graph(session):
        stream = OrtStream(session)
        # distinct chunks, made before timing so that making them is not timed
        chunks = noise((n_warmup + n_runs, *stream.chunk_shape), seed)
        calls = iter(chunks)
        return time_calls(lambda: stream.step(next(calls)), n_warmup, n_runs)
    name = session.get_inputs()[0].name
    feeds = {name: noise(offline_input_shape(session, n_time), seed)}
    return time_calls(lambda: session.run(None, feeds), n_warmup, n_runs)


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads and restore the previous count."""
    if threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _eval_mode(model: Separator) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def torch_chunk_timing(
    model: Separator,
    n_time: int,
    threads: int = 1,
    n_warmup: int = 3,
    n_runs: int = 30,
    seed: int = 0,
) -> Timing:
    """Latency of ``model(mix)`` on (1, 1, ``n_time``) seeded noise, in eval and inference mode
    (the model's train/eval mode is restored afterwards)."""
    _check_runs(n_warmup, n_runs)
    if n_time < 1:
        raise InputError(f"n_time must be at least 1, got {n_time}")
    gen = torch.Generator().manual_seed(seed)
    mix = INPUT_RMS * torch.randn(1, 1, n_time, generator=gen)
    with _torch_threads(threads), _eval_mode(model), torch.inference_mode():
        return time_calls(lambda: model(mix), n_warmup, n_runs)


def torch_step_timing(
    model: Separator,
    hops_per_step: int = 1,
    threads: int = 1,
    n_warmup: int = 3,
    n_runs: int = 30,
    seed: int = 0,
) -> Timing:
    """Latency of one ``model.step`` on a chunk of ``hops_per_step * model.stream_hop`` samples
    of one mono stream, the state carried from call to call. Causal models only."""
    _check_runs(n_warmup, n_runs)
    if not model.causal:
        raise InputError(f"{type(model).__name__}: step timing needs a causal model")
    if hops_per_step < 1:
        raise InputError(f"hops_per_step must be at least 1, got {hops_per_step}")
    gen = torch.Generator().manual_seed(seed)
    n_chunk = hops_per_step * model.stream_hop
    chunks = iter(INPUT_RMS * torch.randn(n_warmup + n_runs, 1, 1, n_chunk, generator=gen))
    with _torch_threads(threads), _eval_mode(model), torch.inference_mode():
        state = model.init_state(1, 1)

        def one_step() -> None:
            nonlocal state
            _, state = model.step(next(chunks), state)

        return time_calls(one_step, n_warmup, n_runs)


def real_time_factor(
    run: Callable[[], object], audio_seconds: float, n_warmup: int = 1, n_runs: int = 3
) -> dict[str, float | int]:
    """Wall time of ``run()`` over the ``audio_seconds`` it processes (< 1: faster than real
    time): median, min and max over ``n_runs`` timed calls after ``n_warmup`` untimed ones."""
    if not audio_seconds > 0:
        raise InputError(f"audio_seconds must be positive, got {audio_seconds}")
    timing = time_calls(run, n_warmup, n_runs)
    per_ms = 1000.0 * audio_seconds
    return {
        "median": timing.p50_ms / per_ms,  # the linear 50th percentile is the median
        "min": timing.min_ms / per_ms,
        "max": timing.max_ms / per_ms,
        "n_runs": n_runs,
    }
