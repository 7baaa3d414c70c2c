"""Post-training int8 quantization of an exported ONNX graph with ONNX Runtime's quantizer.

The graph is pre-processed (shape inference, fusions) and quantized in QDQ format: int8
per-channel weights, uint8 activations with min-max ranges from calibration inputs, so ONNX
Runtime can run integer kernels where it has them. Calibration inputs are fed one at a time; the
min-max calibrator keeps only running extremes per tensor (ORT's histogram calibrators keep every
activation and are not used here). The output file appears only when complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from edgesep.atomic import atomic_path
from edgesep.errors import InputError
from edgesep.export.onnx import INPUT_NAME


def _mixture_feeds(inputs: Iterable[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """The offline graph's feeds: each (T,) or (C, T) mixture as a batch of one."""
    for x in inputs:
        arr = np.asarray(x, dtype=np.float32)
        yield {INPUT_NAME: arr.reshape(1, *arr.shape[-2:]) if arr.ndim > 1 else arr[None, None]}


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over an iterator of feeds."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)
        self.n_seen = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._it, None)
        if feed is not None:
            self.n_seen += 1
        return feed


def static_qdq(
    fp32_path: str | os.PathLike[str],
    staged: Path,
    feeds: Iterable[dict[str, np.ndarray]],
    per_channel: bool = True,
    op_types: tuple[str, ...] | None = None,
    symbolic_shapes: bool = True,
) -> int:
    """Pre-process and quantize ``fp32_path`` into ``staged`` (QDQ: int8 per-channel weights,
    uint8 min-max activations) from calibration ``feeds``; returns how many feeds were seen.

    ``symbolic_shapes=False`` skips ORT's symbolic shape inference, which gives up on graphs
    with a symbolic length (ONNX shape inference and the fusions still run).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = _Reader(feeds)
    with tempfile.TemporaryDirectory(prefix="edgesep-int8-") as tmp:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32_path), str(prep), skip_symbolic_shape=not symbolic_shapes)
        quantize_static(
            str(prep),
            str(staged),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=list(op_types) if op_types else None,
        )
    return reader.n_seen


def quantize_int8(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: Iterable[np.ndarray],
    per_channel: bool = True,
) -> Path:
    """Write the int8 QDQ version of the offline graph at ``fp32_path`` to ``out_path``.

    ``calibration`` yields mixtures (T,) or (C, T) at the model's sample rate; at least one.
    """
    out = Path(out_path)
    with atomic_path(out) as staged:
        n_seen = static_qdq(fp32_path, staged, _mixture_feeds(calibration), per_channel)
        if n_seen == 0:
            raise InputError(f"{fp32_path}: no calibration inputs given for int8 quantization")
    return out
