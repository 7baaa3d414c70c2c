"""Post-training int8 quantization of a streaming step graph (ONNX Runtime QDQ, static ranges).

A step graph has more inputs than the offline graph :mod:`edgesep.export.int8` quantizes: the
audio chunk and one tensor per state. Its activation ranges must be those of a real stream, so
calibration runs the fp32 step graph over the calibration audio with the torch-free runtime,
threading its own states, and hands every call's feeds (chunk and states) to the calibrator.
Weights become per-channel int8, activations uint8 with min-max ranges, in QDQ format, as in
:mod:`edgesep.export.int8`; the states stay float tensors at the graph's edges, so the runtime
streams an int8 graph exactly as it streams the fp32 one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from edgesep.atomic import atomic_path
from edgesep.errors import InputError
from edgesep.export.int8 import static_qdq
from edgesep.runtime.model import CHUNK_NAME, STREAM_STEP, Model


def step_feeds(
    model: Model, calibration: Iterable[np.ndarray], hops_per_step: int | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Every call's inputs when each calibration signal (T,) streams through ``model``'s step
    graph from the zero state, ``hops_per_step`` hops per call (default: the graph's)."""
    info = model.info
    if info.graph != STREAM_STEP:
        raise InputError(f"{info.path}: not a streaming step graph")
    step = (hops_per_step or info.hops_per_step) * info.stream_hop
    for signal in calibration:
        x = np.asarray(signal, dtype=np.float32).reshape(-1)
        state = model.init_state()
        for a in range(0, x.shape[0] - step + 1, step):
            chunk = np.zeros((info.n_streams, step), np.float32)
            chunk[0] = x[a : a + step]
            yield {CHUNK_NAME: chunk, **state}
            _, state = model.step(chunk, state)


def quantize_step_int8(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: Iterable[np.ndarray],
    hops_per_step: int | None = None,
    per_channel: bool = True,
    op_types: tuple[str, ...] = ("Conv",),
) -> Path:
    """Write the int8 QDQ version of the step graph at ``fp32_path`` to ``out_path``
    (atomically). ``calibration`` yields mono signals (T,) at the model's rate; at least one
    must be a full step long. The ONNX metadata (rate, hop, delay, state names) is kept.

    A dynamic-length graph may calibrate with many ``hops_per_step`` per call: the stream
    computes the same activation values whatever its chunking, so the ranges are the same, and
    ORT's calibrator (which keeps every call's intermediate tensors) has far fewer calls to hold.
    ``op_types``: what is quantized; the default, Conv only, keeps every state path in float,
    so the int8 stream equals the int8 graph run offline (quantizing Concat and Slice too
    requantizes the states at each call: 35 dB stream vs offline instead of exact)."""
    import onnx

    model = Model(fp32_path)
    feeds = step_feeds(model, calibration, hops_per_step)
    out = Path(out_path)
    with atomic_path(out) as staged:
        # symbolic shape inference gives up on the symbolic chunk length
        n_seen = static_qdq(
            fp32_path, staged, feeds, per_channel, op_types=op_types, symbolic_shapes=False
        )
        if n_seen == 0:
            raise InputError(f"{fp32_path}: no calibration step (signals shorter than a step?)")
        proto = onnx.load(str(staged))
        have = {p.key for p in proto.metadata_props}
        meta = model.session.get_modelmeta().custom_metadata_map
        for key, value in meta.items():
            if key not in have:
                proto.metadata_props.add(key=key, value=value)
        proto.metadata_props.add(key="edgesep.quantization", value="int8-qdq-static")
        onnx.save(proto, str(staged))
    return out
