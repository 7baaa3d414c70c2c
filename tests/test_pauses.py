"""benchmarks/pauses.py: stalls every CPU saw at once, from probes that really run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from benchmark_scripts import load_benchmark

pauses = load_benchmark("pauses")
machine_pauses, pause_summary = pauses.machine_pauses, pauses.pause_summary
start_probes, stop_probes = pauses.start_probes, pauses.stop_probes

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="probes pin themselves (Linux)"
)


def test_machine_pauses_are_where_every_cpu_stalled() -> None:
    cpu0 = [(0.0, 2.0), (5.0, 6.0), (9.0, 9.5)]
    cpu1 = [(1.0, 3.0), (5.5, 7.0)]
    assert machine_pauses([cpu0, cpu1]) == [(1.0, 2.0), (5.5, 6.0)]
    cpu2 = [(1.5, 5.8)]
    assert machine_pauses([cpu0, cpu1, cpu2]) == [(1.5, 2.0), (5.5, 5.8)]
    assert machine_pauses([cpu0, [(2.0, 5.0)]]) == []  # touching is not overlapping
    assert machine_pauses([cpu0]) == sorted(cpu0)  # one CPU: its stalls are the machine's


def test_pause_summary_counts_and_sizes() -> None:
    results = [
        {"cpu": 0, "fifo": True, "stalls": [[0.0, 0.010], [1.0, 1.002]]},
        {"cpu": 1, "fifo": False, "stalls": [[0.004, 0.012], [1.0, 1.003], [2.0, 2.1]]},
    ]
    s = pause_summary(results, 60.0)
    assert s["stalls_per_cpu"] == [2, 3] and s["max_stall_ms_per_cpu"] == [10.0, 100.0]
    assert s["machine_pauses"] == 2 and s["machine_pauses_over_4ms"] == 1
    assert s["max_machine_pause_ms"] == pytest.approx(6.0)
    assert s["machine_paused_ms"] == pytest.approx(8.0) and s["fifo"] is False


def test_probes_run_on_every_cpu_and_stop_when_asked(tmp_path: Path) -> None:
    probes = start_probes(600.0, 1.5e-3, tmp_path)  # far longer than the test: stopped below
    time.sleep(0.3)
    results = stop_probes(probes)
    assert [r["cpu"] for r in results] == sorted(os.sched_getaffinity(0))
    for r in results:
        assert isinstance(r["fifo"], bool)
        assert all(b - a > 1.5e-3 for a, b in r["stalls"]), "only stalls over the threshold"
    assert all(p.returncode == 0 for p in probes.procs)
