"""Paced pushes under different ways of waiting, and a canary that is not the model at all.

Runs ``--seconds`` of real time as one paced loop of 8 ms blocks (the bundled default step
graph at 4 hops per call, one thread) and rotates, every ``--segment`` seconds, between
variants, so each sees the same machine over the same minutes:

- ``push-sleep``: sleep until the block has arrived, then push it (as ``edgesep stream``);
- ``push-hybrid``: sleep until ``--spin-ms`` before the arrival, then busy-wait for it
  (:func:`edgesep.runtime.realtime.wait_until`): the CPU is not idle when the block arrives;
- ``push-spin``, ``canary-spin`` (on request): busy-wait the whole time between pushes, so the
  CPU never goes idle (a whole core spent waiting);
- ``push-hybrid-fifo``: as ``push-hybrid``, the thread under SCHED_FIFO (``--rt-priority``,
  :func:`edgesep.runtime.realtime.realtime_priority`): no other thread of the machine can take
  its CPU (needs root or CAP_SYS_NICE);
- ``canary-sleep``, ``canary-hybrid-fifo``: as the push variants, but the "push" is a fixed
  numpy workload of about the same cost (repeated 48x48 matrix products), timed in 100 slices.
  No ONNX Runtime, no model, no other thread: under SCHED_FIFO a stall here comes from outside
  the machine's scheduler (the hypervisor), and the longest slice says whether the thread lost
  the CPU in one piece.

Per variant it reports the deadline misses (a push finishing later than one block after its
block arrived), the lateness of the wake-up (push start minus arrival), push wall and CPU times,
the pushes over 4 ms, and the pushes that lost over 2 ms of wall time off their thread's CPU
clock (the thread did not run: another thread had the CPU, or it waited for a lock). JSON lines
on stdout, for docs/RUNTIME.md.

Usage: python benchmarks/runtime_pacing.py [--seconds 600] [--segment 10] [--spin-ms 0.5]
       [--variants push-sleep push-hybrid ...]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import soundfile as sf

from edgesep.cli.stream import DEFAULT_STREAM_MODEL
from edgesep.runtime import Model, StreamingSession
from edgesep.runtime.realtime import realtime_priority, steal_seconds, wait_until

SR = 8000
VARIANTS = ["push-sleep", "push-hybrid", "push-hybrid-fifo", "canary-sleep", "canary-hybrid-fifo"]
EXTRA = ["push-spin", "canary-spin"]  # busy-wait throughout: a whole core, never idle


class Canary:
    """A fixed numpy workload in 100 timed slices; ``gaps_ms`` keeps each call's longest."""

    def __init__(self, target_ms: float) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.random((48, 48), dtype=np.float32)
        self.out = np.empty_like(self.a)
        self.reps = 1
        self.gaps_ms: list[float] = []
        t0 = time.perf_counter()
        for _ in range(50):
            self._slices(record=False)
        per_call = (time.perf_counter() - t0) / 50
        self.reps = max(1, round(target_ms / 1000 / per_call))

    def _slices(self, record: bool = True) -> None:
        stamps = np.empty(101)
        stamps[0] = time.perf_counter()
        for j in range(100):
            for _ in range(self.reps):
                np.dot(self.a, self.a, out=self.out)
            stamps[j + 1] = time.perf_counter()
        if record:
            self.gaps_ms.append(1e3 * float(np.diff(stamps).max()))

    def __call__(self, _block: np.ndarray) -> None:
        self._slices()


def summary(name: str, rows: list[tuple[float, float, float, bool]], extra: dict) -> dict:
    late, wall, cpu, miss = (np.array(c) for c in zip(*rows, strict=True))
    return {
        "variant": name,
        "blocks": len(rows),
        "misses": int(miss.sum()),
        "wake_late_p99_ms": round(float(np.percentile(late, 99)), 3),
        "wake_late_max_ms": round(float(late.max()), 2),
        "push_p50_ms": round(float(np.median(wall)), 3),
        "push_p99_ms": round(float(np.percentile(wall, 99)), 3),
        "push_cpu_p99_ms": round(float(np.percentile(cpu, 99)), 3),
        "pushes_over_4ms": int((wall > 4).sum()),
        "max_push_ms": round(float(wall.max()), 2),
        "max_push_cpu_ms": round(float(cpu.max()), 2),
        "off_cpu_over_2ms": int((wall - cpu > 2).sum()),
        **extra,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--segment", type=float, default=10.0)
    ap.add_argument("--spin-ms", type=float, default=0.5)
    ap.add_argument("--rt-priority", type=int, default=50)
    ap.add_argument("--variants", nargs="+", choices=VARIANTS + EXTRA, default=VARIANTS)
    ap.add_argument("--input", default="out/runtime-long/mix_10min.wav")
    args = ap.parse_args()
    x, _ = sf.read(args.input, dtype="float32", frames=SR * args.seconds)
    names = args.variants
    work: dict[str, Callable[[np.ndarray], object]] = {}
    block = 0
    for name in names:
        if name.startswith("push"):
            session = StreamingSession(Model(DEFAULT_STREAM_MODEL), hops_per_step=4, rescale=False)
            session.warm_up()
            work[name], block = session.push, session.step_samples
        else:
            work[name] = Canary(target_ms=0.65)
    block = block or 64
    spin = {n: args.spin_ms / 1000 if "hybrid" in n else 0.0 for n in names}
    spin.update({n: 1.0 for n in names if "-spin" in n})  # never sleeps
    rows: dict[str, list[tuple[float, float, float, bool]]] = {n: [] for n in names}
    restore = None
    steal0 = steal_seconds()
    start = time.perf_counter()
    for a in range(0, len(x) - block + 1, block):
        name = names[int(a / SR / args.segment) % len(names)]
        fifo = name.endswith("-fifo")
        if fifo and restore is None:
            restore = realtime_priority(args.rt_priority)
        elif not fifo and restore is not None:
            restore = restore()
        arrival = (a + block) / SR
        wait_until(start + arrival, spin[name])
        t0, c0 = time.perf_counter(), time.thread_time()
        work[name](x[a : a + block])
        t1, c1 = time.perf_counter(), time.thread_time()
        miss = t1 - start > arrival + block / SR + 1e-9
        rows[name].append((1e3 * (t0 - start - arrival), 1e3 * (t1 - t0), 1e3 * (c1 - c0), miss))
    if restore is not None:
        restore()
    steal1 = steal_seconds()
    for name in names:
        extra = {}
        if isinstance(work[name], Canary):
            gaps = np.array(work[name].gaps_ms)  # type: ignore[attr-defined]
            extra = {
                "canary_max_slice_ms": round(float(gaps.max()), 2),
                "canary_slices_over_3ms": int((gaps > 3).sum()),
            }
        print(json.dumps(summary(name, rows[name], extra)))
    if steal0 is not None and steal1 is not None:
        print(json.dumps({"seconds": args.seconds, "steal_ms": round(1000 * (steal1 - steal0))}))


if __name__ == "__main__":
    main()
