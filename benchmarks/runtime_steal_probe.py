"""Deadline misses of a stream against the hypervisor's steal counter, push by push.

Streams ``--seconds`` of out/runtime-long/mix_10min.wav through the bundled default step graph,
4 hops per call, one 8 ms block per push, and reads Linux's steal counter (/proc/stat, 10 ms
ticks, summed over the CPUs) before each block's wait and after its push. Between pushes the
thread sleeps (``--wait sleep``, as ``edgesep stream`` does), busy-waits (``--wait spin``) or
does not wait at all (``--wait none``: unpaced, the real-time schedule simulated as in
:class:`edgesep.runtime.realtime.RealtimeRunner`). It reports the misses, how many had steal ticks
in their block or the one before, and the pushes that took over 4 ms of CPU time.

A diagnostic for docs/RUNTIME.md ("where its misses come from"), not a timing benchmark: the
counter reads sit outside the timed pushes but inside the loop.

Usage: python benchmarks/runtime_steal_probe.py [--seconds 600] [--wait sleep|spin|none]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import soundfile as sf

from edgesep.cli.stream import DEFAULT_STREAM_MODEL
from edgesep.runtime import Model, StreamingSession
from edgesep.runtime.realtime import steal_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--wait", choices=["sleep", "spin", "none"], default="sleep")
    ap.add_argument("--input", default="out/runtime-long/mix_10min.wav")
    args = ap.parse_args()
    sr = 8000
    x, _ = sf.read(args.input, dtype="float32", frames=sr * args.seconds)
    session = StreamingSession(Model(DEFAULT_STREAM_MODEL), hops_per_step=4, rescale=False)
    session.warm_up()
    block = session.step_samples
    rows = []
    steal_start = steal_seconds()
    start, finish_prev = time.perf_counter(), 0.0
    for a in range(0, len(x) - block + 1, block):
        arrival = (a + block) / sr
        deadline = arrival + block / sr
        s0 = steal_seconds() or 0.0
        wait = arrival - (time.perf_counter() - start)
        if args.wait == "sleep" and wait > 0:
            time.sleep(wait)
        elif args.wait == "spin":
            while time.perf_counter() - start < arrival:
                pass
        t0, c0 = time.perf_counter(), time.thread_time()
        session.push(x[a : a + block])
        t1, c1 = time.perf_counter(), time.thread_time()
        s1 = steal_seconds() or 0.0
        finish = max(arrival, finish_prev) + (t1 - t0) if args.wait == "none" else t1 - start
        finish_prev = finish
        rows.append((finish > deadline + 1e-9, 1e3 * (t1 - t0), 1e3 * (c1 - c0), s1 > s0))
    miss, wall, cpu, stolen = (np.array(c) for c in zip(*rows, strict=True))
    near = stolen | np.concatenate([[False], stolen[:-1]])
    steal_end = steal_seconds()
    print(
        json.dumps(
            {
                "wait": args.wait,
                "blocks": len(rows),
                "misses": int(miss.sum()),
                "misses_with_steal_in_block_or_previous": int((miss & near).sum()),
                "blocks_with_steal_ticks": int(stolen.sum()),
                "pushes_over_4ms_cpu": int((cpu > 4).sum()),
                "max_push_ms_wall": round(float(wall.max()), 2),
                "max_push_ms_cpu": round(float(cpu.max()), 2),
                "steal_ms": None
                if steal_start is None or steal_end is None
                else round(1000 * (steal_end - steal_start)),
            }
        )
    )


if __name__ == "__main__":
    main()
