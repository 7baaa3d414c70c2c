"""Export a Separator to ONNX with dynamic batch and time axes, and check it against eager.

The graph has one input ``mix`` (B, C, T) and one output ``sources`` (B, S, C, T); C is fixed at
export time. It is traced with torch's TorchScript-based exporter (``dynamo=False``), which needs
no package beyond torch and onnx; :func:`check_parity` runs the file in ONNX Runtime at lengths
other than the traced one, which is what catches a length accidentally frozen into the trace.
The model's card facts (sample rate, sources, causality, lookahead) go into the ONNX metadata so a
torch-free runtime can read them.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from edgesep.atomic import atomic_path
from edgesep.config import to_dict
from edgesep.models.base import Separator

INPUT_NAME = "mix"
OUTPUT_NAME = "sources"
# test-signal level for parity checks: RMS 0.05 = -26 dBFS, about that of normalised speech
INPUT_RMS = 0.05


class ParityError(AssertionError):
    """ONNX Runtime output differs from the eager model beyond the tolerance."""


def export_onnx(
    model: Separator,
    path: str | os.PathLike[str],
    example_seconds: float = 1.0,
    opset: int = 17,
    n_chan: int = 1,
) -> Path:
    """Write ``model`` (traced in eval mode) to ``path`` as ONNX; returns the path.

    The file is written to a temporary name beside ``path`` and renamed when complete, so a
    failed export never leaves a half-written model behind. The model's train/eval mode is
    restored afterwards. What is traced is ``model.for_export()`` (BatchNorms folded into convs
    where the family can), so :func:`check_parity` against ``model`` also checks the folding.
    """
    import onnx

    out = Path(path)
    n_time = max(1, round(example_seconds * model.sample_rate))
    example = torch.randn(1, n_chan, n_time, generator=torch.Generator().manual_seed(0))
    was_training = model.training
    model.eval()
    try:
        with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
            tmp_name = str(tmp)
            # the legacy exporter announces its deprecation on every call; nothing to act on
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # strided slices it cannot fold are left to the runtime; harmless
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            torch.onnx.export(
                model.for_export().eval(),
                (example,),
                tmp_name,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    INPUT_NAME: {0: "batch", 2: "time"},
                    OUTPUT_NAME: {0: "batch", 3: "time"},
                },
                opset_version=opset,
                dynamo=False,
            )
            proto = onnx.load(tmp_name)
            for key, value in model_metadata(model).items():
                proto.metadata_props.add(key=key, value=value)
            onnx.save(proto, tmp_name)
    finally:
        model.train(was_training)
    return out


def model_metadata(model: Separator) -> dict[str, str]:
    """The card facts a torch-free runtime and the profiler read from an ONNX file; the config
    lets the profiler rebuild the architecture (on the meta device) to count its MACs."""
    config = getattr(model, "config", None)
    return {
        "edgesep.family": str(getattr(model, "family", "")),
        "edgesep.config": json.dumps(to_dict(config) if config is not None else None),
        "edgesep.sample_rate": str(model.sample_rate),
        "edgesep.n_src": str(model.n_src),
        "edgesep.source_names": json.dumps(list(model.source_names)),
        "edgesep.causal": json.dumps(bool(model.causal)),
        "edgesep.lookahead_samples": str(model.lookahead_samples),
        # the frame hop: chunked inference aligns its chunk starts to it (edgesep.chunking)
        "edgesep.hop": str(model.hop if isinstance(model.hop, int) and model.hop > 0 else 1),
    }


def check_parity(
    model: Separator,
    path: str | os.PathLike[str],
    lengths: Iterable[int],
    rtol: float = 1e-4,
    atol: float = 1e-5,
    batch: int = 2,
    seed: int = 0,
    input_rms: float = INPUT_RMS,
) -> float:
    """Run the ONNX file and the eager model (eval mode) on seeded noise at each length.

    The noise has a speech-like level (``input_rms``, default -26 dBFS): a trained model fed
    full-scale noise answers with samples in the hundreds, where float32 rounding alone exceeds
    any fixed ``atol``.

    Returns the largest absolute difference seen; raises :class:`ParityError` naming the length
    when ``|onnx - eager| > atol + rtol * |eager|`` anywhere, or when the shapes differ.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    n_chan = session.get_inputs()[0].shape[1]
    if not isinstance(n_chan, int):
        n_chan = 1
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        for n_time in lengths:
            mix = input_rms * torch.randn(batch, n_chan, n_time, generator=gen)
            with torch.no_grad():
                want = model(mix).numpy()
            got = session.run([OUTPUT_NAME], {INPUT_NAME: mix.numpy()})[0]
            if got.shape != want.shape:
                raise ParityError(
                    f"{path}: ONNX output shape {got.shape} != eager {want.shape} at T={n_time}"
                )
            diff = np.abs(got - want)
            worst = max(worst, float(diff.max(initial=0.0)))
            # written as "not all within" so that a NaN anywhere fails too
            if not np.all(diff <= atol + rtol * np.abs(want)):
                raise ParityError(
                    f"{path}: ONNX vs eager max |diff| {diff.max():.3g} exceeds atol={atol:g} + "
                    f"rtol={rtol:g}*|eager| at T={n_time}"
                )
    finally:
        model.train(was_training)
    return worst
