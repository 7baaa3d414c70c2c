"""``edgesep stream`` in this process, keeping every push's wall and CPU time.

Runs the command exactly as the CLI does (the arguments after ``--``), then prints one JSON line
that counts the pushes by kind of stall, which the stream report only summarises: pushes over
4 ms on the wall clock and on the thread's CPU clock, and pushes that lost over 2 ms off the CPU
(wall minus CPU: the thread did not run). ``--save`` keeps the per-push times (.npy, 2 x n).

Usage: python benchmarks/stream_push_times.py [--save F.npy] -- INPUT [edgesep stream options]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

import edgesep.cli.stream as cli_stream
from edgesep.cli.main import main as edgesep_main


def main() -> None:
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", default=None)
    args = ap.parse_args(argv[:cut])
    runners: list[Any] = []

    class KeptRunner(cli_stream.RealtimeRunner):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            runners.append(self)

    cli_stream.RealtimeRunner = KeptRunner  # type: ignore[misc]
    sys.argv = ["edgesep", "stream", *argv[cut + 1 :]]
    try:
        edgesep_main()
    except SystemExit as exc:
        if exc.code:
            raise
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
            }
        )
    )


if __name__ == "__main__":
    main()
