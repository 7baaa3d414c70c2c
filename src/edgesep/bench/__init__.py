"""Edge cost beside quality: the profiler (params, bytes, MACs, peak RAM, latency, RTF, energy),
device profiles and budgets, and the benchmark harness with its reports and manifest."""

from edgesep.bench.macs import count_macs, macs_per_second

__all__ = ["count_macs", "macs_per_second"]
