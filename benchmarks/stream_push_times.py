"""``edgesep stream`` in this process, keeping every push's wall and CPU time.

Runs the command exactly as the CLI does (the arguments after ``--``), then prints one JSON line
that counts the pushes by kind of stall, which the stream report only summarises: pushes over
4 ms on the wall clock and on the thread's CPU clock, and pushes that lost over 2 ms off the CPU
(wall minus CPU: the thread did not run), and the process's page faults. ``--save`` keeps the
per-push times (.npy, 2 x n).

``--pauses`` runs the probes of ``benchmarks/pauses.py`` on every CPU during the stream,
and says which misses overlap a *machine pause* (all CPUs stalled at once: nothing on this
machine ran), at the stream's deadline and at each deadline of the report's ladder.

Usage: python benchmarks/stream_push_times.py [--save F.npy] [--pauses] -- INPUT [stream options]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pauses import pause_summary, start_probes, stop_probes

import edgesep.cli.stream as cli_stream
from edgesep.cli.main import main as edgesep_main
from edgesep.runtime.realtime import DEADLINES_MS


def main() -> None:
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", default=None)
    ap.add_argument("--pauses", action="store_true")
    args = ap.parse_args(argv[:cut])
    runners: list[Any] = []

    class KeptRunner(cli_stream.RealtimeRunner):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            runners.append(self)

        def _process(self, blocks: Any) -> Any:
            self.started = time.perf_counter()  # the runner's own start, a few us later
            yield from super()._process(blocks)

    cli_stream.RealtimeRunner = KeptRunner  # type: ignore[misc]
    sys.argv = ["edgesep", "stream", *argv[cut + 1 :]]
    tmp = tempfile.TemporaryDirectory(prefix="pauses-")
    probes = start_probes(1e6, 1.5e-3, Path(tmp.name)) if args.pauses else None
    t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    try:
        edgesep_main()
    except SystemExit as exc:
        if exc.code:
            raise
    finally:
        pauses = pause_summary(stop_probes(probes), time.perf_counter() - t0) if probes else {}
        tmp.cleanup()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    report = runners[-1].report
    wall, cpu = np.array(report.push_ms), np.array(report.push_cpu_ms)
    if args.save:
        np.save(args.save, np.stack([wall, cpu]))
    summary = report.summary()
    print(
        json.dumps(
            {
                "command": " ".join(sys.argv[1:]),
                "deadline_misses": summary["deadline_misses"],
                "deadline_misses_cpu": summary["deadline_misses_cpu"],
                "pushes_over_4ms_wall": int((wall > 4).sum()),
                "pushes_over_4ms_cpu": int((cpu > 4).sum()),
                "pushes_off_cpu_over_2ms": int((wall - cpu > 2).sum()),
                "max_push_ms": round(float(wall.max()), 2),
                "max_push_cpu_ms": round(float(cpu.max()), 2),
                "steal_ms": summary["steal_ms"],
                "misses_by_deadline_ms": summary["misses_by_deadline_ms"],
                "max_response_ms": summary["max_response_ms"],
                # page faults of the whole process (all threads, model loading included):
                # a major fault waits for the disk
                "major_faults": ru1.ru_majflt - ru0.ru_majflt,
                "minor_faults": ru1.ru_minflt - ru0.ru_minflt,
                **(attribute(runners[-1], pauses) if pauses else {}),
            }
        )
    )


def attribute(runner: Any, pauses: dict[str, Any]) -> dict[str, Any]:
    """The misses at each deadline, and those of them whose push (block arrival to finish)
    overlaps a machine pause; with the probes' own figures."""
    rep = runner.report
    response = np.array(rep.push_response_ms) / 1e3
    arrival = runner.started + rep.block_samples / rep.sample_rate * np.arange(1, len(response) + 1)
    finish = arrival + response
    spans = np.array(pauses.pop("pauses")).reshape(-1, 2)

    def paused(i: int) -> bool:
        return bool(((spans[:, 0] < finish[i]) & (spans[:, 1] > arrival[i])).any())

    out = {}
    for d in sorted({rep.deadline_ms, *DEADLINES_MS}):
        missed = np.flatnonzero(response > float(d) / 1e3 + 1e-9)
        out[f"{float(d):g}"] = [len(missed), sum(paused(int(i)) for i in missed)]
    return {"misses_in_machine_pauses_by_deadline_ms": out, "probes": pauses}


if __name__ == "__main__":
    main()
