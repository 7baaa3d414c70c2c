"""Edge cost of a model: MACs counted from the graph, and (later) bytes, RAM and latency."""

from edgesep.bench.macs import count_macs, macs_per_second

__all__ = ["count_macs", "macs_per_second"]
