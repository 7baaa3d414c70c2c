"""Pauses of the whole machine: a probe on every CPU, and the stalls they all see at once.

Before blaming a model for a missed deadline, ask whether the machine ran at all. One probe
process per CPU, pinned to it and, where allowed, under SCHED_FIFO at priority 60 (above
``edgesep stream --rt-priority 50``), so no thread of the machine can delay it. It wakes every
millisecond, then reads the clock in a loop for 50 us. A wake-up later than the threshold, or
two clock reads further apart than it, is a *stall* of that CPU: the interval ``[due, woke]`` or
``[read, next read]``. A stall that every CPU's probe saw at the same time is a *machine pause*:
time in which no CPU of the machine ran anything (on a virtual machine: the host did not run
it). No code on the machine can meet a deadline shorter than a pause.

Written by hand: rt-tests' ``cyclictest`` measures the same wake-up latency per CPU, but gives
no timestamps to intersect across CPUs or to match with a stream's late pushes. The clock is
``time.perf_counter`` (CLOCK_MONOTONIC on Linux, the same in every process). Linux only
(``os.sched_setaffinity``). Used by ``benchmarks/machine_pauses.py`` and
``benchmarks/stream_push_times.py --pauses``: measurement apparatus for the host, not part of
the runtime a user ships.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Interval = tuple[float, float]


def probe(cpu: int, seconds: float, threshold: float, out: Path) -> None:
    """Run one probe on ``cpu`` for ``seconds``, until SIGTERM or until its parent is gone;
    write its stalls (start, end; seconds on ``time.perf_counter``) as JSON to ``out``.
    ``out.ready`` marks it started."""
    os.sched_setaffinity(0, {cpu})
    fifo = True
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(60))
    except PermissionError:
        fifo = False
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    Path(f"{out}.ready").touch()
    clock = time.perf_counter
    stalls: list[Interval] = []
    end = clock() + seconds
    due = clock() + 1e-3
    parent, n = os.getppid(), 0
    while not stop[0] and clock() < end:
        n += 1
        if n % 1000 == 0 and os.getppid() != parent:
            break  # the process that started it is gone: nobody will stop it
        rest = due - clock()
        if rest > 0:
            time.sleep(rest)
        woke = clock()
        if woke - due > threshold:
            stalls.append((due, woke))
        prev, until = woke, woke + 5e-5
        while prev < until:
            now = clock()
            if now - prev > threshold:
                stalls.append((prev, now))
            prev = now
        due = max(due + 1e-3, clock())
    out.write_text(json.dumps({"cpu": cpu, "fifo": fifo, "stalls": stalls}))


@dataclass
class Probes:
    """Probe processes, one per CPU, and the files they write."""

    procs: list[subprocess.Popen[bytes]]
    outs: list[Path]


def start_probes(seconds: float, threshold: float, folder: Path) -> Probes:
    """One probe process per CPU this process may use, writing ``folder/cpu<N>.json``."""
    cpus = sorted(os.sched_getaffinity(0))
    outs = [folder / f"cpu{cpu}.json" for cpu in cpus]
    args = ["--seconds", str(seconds), "--threshold-ms", str(1e3 * threshold)]
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    procs = [
        subprocess.Popen([*cmd, "--probe", str(c), "--out", str(o)])
        for c, o in zip(cpus, outs, strict=True)
    ]
    return Probes(procs, outs)


def stop_probes(probes: Probes, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Stop the probes (each once it has started, so none dies before writing) and return
    what each found; :class:`RuntimeError` names a probe that failed."""
    limit = time.monotonic() + timeout
    for p, out in zip(probes.procs, probes.outs, strict=True):
        while p.poll() is None and not Path(f"{out}.ready").exists():
            if time.monotonic() > limit:
                break
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
    results = []
    for p, out in zip(probes.procs, probes.outs, strict=True):
        code = p.wait(timeout=timeout)
        if code != 0 or not out.exists():
            raise RuntimeError(f"pause probe for {out.stem} failed (exit code {code})")
        results.append(json.loads(out.read_text()))
    return results


def machine_pauses(per_cpu: list[list[Interval]]) -> list[Interval]:
    """The intervals in which every CPU had a stall (the intersection over CPUs)."""
    common = sorted(per_cpu[0])
    for other in per_cpu[1:]:
        common = [
            (max(a0, b0), min(a1, b1))
            for a0, a1 in common
            for b0, b1 in other
            if max(a0, b0) < min(a1, b1)
        ]
    return sorted(common)


def pause_summary(results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    stalls = [[tuple(s) for s in r["stalls"]] for r in results]
    pauses = machine_pauses(stalls)
    ms = [1e3 * (b - a) for a, b in pauses]
    return {
        "seconds": round(seconds, 1),
        "cpus": len(results),
        "fifo": all(r["fifo"] for r in results),
        "stalls_per_cpu": [len(s) for s in stalls],
        "max_stall_ms_per_cpu": [
            round(max((1e3 * (b - a) for a, b in s), default=0.0), 2) for s in stalls
        ],
        "machine_pauses": len(pauses),
        "machine_pauses_over_4ms": sum(m > 4 for m in ms),
        "max_machine_pause_ms": round(max(ms, default=0.0), 2),
        "machine_paused_ms": round(sum(ms), 1),
        "pauses": [(round(a, 4), round(b, 4)) for a, b in pauses],
    }


def _probe_main(argv: list[str]) -> None:
    """``python benchmarks/pauses.py --seconds S --threshold-ms T --probe CPU --out F``."""
    opts = dict(zip(argv[::2], argv[1::2], strict=True))
    probe(
        int(opts["--probe"]),
        float(opts["--seconds"]),
        float(opts["--threshold-ms"]) / 1e3,
        Path(opts["--out"]),
    )


if __name__ == "__main__":
    _probe_main(sys.argv[1:])
