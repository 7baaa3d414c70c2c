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
from edgesep.export.onnx import INPUT_NAME


class _Reader:
    """The ``CalibrationDataReader`` protocol over an iterable of (C, T) mixtures."""

    def __init__(self, inputs: Iterable[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(inputs)
        self.n_seen = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        if x is None:
            return None
        arr = np.asarray(x, dtype=np.float32)
        self.n_seen += 1
        return {INPUT_NAME: arr.reshape(1, *arr.shape[-2:]) if arr.ndim > 1 else arr[None, None]}


def quantize_int8(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    calibration: Iterable[np.ndarray],
    per_channel: bool = True,
) -> Path:
    """Write the int8 QDQ version of the offline graph at ``fp32_path`` to ``out_path``.

    ``calibration`` yields mixtures (T,) or (C, T) at the model's sample rate; at least one.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out_path)
    reader = _Reader(calibration)
    with tempfile.TemporaryDirectory(prefix="edgesep-int8-") as tmp, atomic_path(out) as staged:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32_path), str(prep))
        quantize_static(
            str(prep),
            str(staged),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
        )
        if reader.n_seen == 0:
            raise ValueError(f"{fp32_path}: no calibration inputs given for int8 quantization")
    return out
