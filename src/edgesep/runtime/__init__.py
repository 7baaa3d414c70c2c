"""The torch-free runtime: exported models on numpy + ONNX Runtime, offline and streaming.

- :class:`Model`: an exported graph (fp32 or int8 ONNX; offline or streaming step graph) with
  its metadata and card, loaded from a bundled name or a path.
- :class:`OfflineSession`: whole files and arrays, chunked with overlap-add, bounded memory,
  resampling in and out; file to file streams from disk.
- :class:`StreamingSession`: real time; ``push(chunk)`` of any size returns as many samples,
  a fixed ``delay`` late, the graph's state carried between calls; ``flush()`` at the end.
- :class:`AdaptiveStreamingSession`: the same through several graphs of one task (an elastic
  supernet's subnets), moving to a smaller one when a push misses its deadline.

Nothing here imports torch (``tests/test_runtime.py`` checks it in a fresh interpreter).
"""

from edgesep.runtime.adaptive import AdaptiveStreamingSession
from edgesep.runtime.model import Model, ModelInfo, ModelLoadError, resolve
from edgesep.runtime.offline import OfflineSession
from edgesep.runtime.stream import StreamingSession

__all__ = [
    "AdaptiveStreamingSession",
    "Model",
    "ModelInfo",
    "ModelLoadError",
    "OfflineSession",
    "StreamingSession",
    "resolve",
]
