"""Pauses of the whole machine over ``--seconds``: one probe per CPU, and the stalls that all
CPUs saw at once (``benchmarks/pauses.py``). Prints one JSON line.

Usage: python benchmarks/machine_pauses.py [--seconds 300] [--threshold-ms 1.5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pauses import pause_summary, start_probes, stop_probes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--threshold-ms", type=float, default=1.5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        probes = start_probes(args.seconds, args.threshold_ms / 1e3, Path(tmp))
        for p in probes.procs:
            p.wait()
        summary = pause_summary(stop_probes(probes), time.perf_counter() - t0)
    summary.pop("pauses")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
