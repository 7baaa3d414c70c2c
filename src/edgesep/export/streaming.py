"""Export a causal model's streaming core as an ONNX *step graph* with explicit state.

The graph computes one call of ``step_core`` (``call_core``: with a quantized model's
model-level input/output quantizers around it): inputs ``chunk`` (n_streams, hops_per_step * hop)
and one tensor per state (named by ``core_state_names``), outputs ``sources``
(n_streams, S, hops_per_step * hop) and the new states (``<name>_out``). The caller feeds each
call's output states to the next call, so a hop costs the same however long the stream has run.
Chunks of other sizes and the fixed output delay are the caller's business (the torch
``StreamingMixin.step`` and the torch-free runtime both buffer to whole hops).

With ``dynamic=True`` the chunk's length is a graph dimension: one file takes any whole number
of hops per call (the families' step cores have no length-dependent branches), so the runtime
chooses its hops per call, and a single call on a whole signal from the zero state computes the
offline causal model (``stream_core_delay`` samples late).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgesep.atomic import atomic_path
from edgesep.errors import InputError
from edgesep.export.onnx import INPUT_RMS, ParityError, model_metadata
from edgesep.models.base import Separator
from edgesep.nn.conv_lift import lift_conv1d

CHUNK_NAME = "chunk"
OUTPUT_NAME = "sources"


class _StepGraph(nn.Module):
    def __init__(self, model: Separator) -> None:
        super().__init__()
        self.model = model

    def forward(self, chunk: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, new_state = self.model.call_core(chunk, list(state))
        return (out, *new_state)


def step_metadata(
    model: Separator, hops_per_step: int, n_streams: int, dynamic: bool = False
) -> dict[str, str]:
    names = model.core_state_names()
    return {
        **model_metadata(model),
        "edgesep.graph": "stream_step",
        "edgesep.stream_hop": str(model.stream_hop),
        "edgesep.hops_per_step": str(hops_per_step),
        "edgesep.dynamic_hops": json.dumps(dynamic),
        "edgesep.n_streams": str(n_streams),
        "edgesep.stream_core_delay": str(model.stream_core_delay),
        "edgesep.stream_delay": str(model.stream_delay),
        "edgesep.state_inputs": json.dumps(names),
        "edgesep.state_outputs": json.dumps([f"{n}_out" for n in names]),
    }


def lifted_core(
    model: Separator, chunk: torch.Tensor, state: list[torch.Tensor], tol: float = 1e-4
) -> Separator:
    """``model`` (eval, export form) with its 1-D convs lifted to 2-D (:mod:`edgesep.nn.conv_lift`)
    when its step core then computes the same call on ``chunk`` and ``state``; else ``model``
    itself. A family whose step core keeps (B, C, T) tensors gains nothing but loses nothing; one
    whose norms need (B, C, T) (cLN) raises or differs, and keeps its 1-D graph."""
    lifted = copy.deepcopy(model)
    if not lift_conv1d(lifted):
        return model
    with torch.no_grad():
        want, want_state = model.step_core(chunk, state)
        try:
            got, got_state = lifted.step_core(chunk, state)
        except (RuntimeError, ValueError, IndexError):
            return model
    pairs = [(got, want), *zip(got_state, want_state, strict=True)]
    same = all(
        g.shape == w.shape and bool(torch.allclose(g, w, rtol=tol, atol=tol * 1e-1))
        for g, w in pairs
    )
    return lifted if same else model


def export_step_onnx(
    model: Separator,
    path: str | os.PathLike[str],
    hops_per_step: int = 1,
    n_streams: int = 1,
    opset: int = 17,
    dynamic: bool = False,
    lift_2d: bool = True,
) -> Path:
    """Write the step graph of causal ``model`` to ``path`` (atomically); returns the path.

    ``dynamic``: the chunk length is symbolic (any multiple of the hop per call);
    ``hops_per_step`` is then the traced length and the suggested one, kept in the metadata.
    ``lift_2d``: run the convs as 2-D ones where the family's step core allows it (see
    :func:`lifted_core`; ONNX Runtime's CPU provider ran the 12-block bundled model's graph 1.3x
    to 1.8x faster so, at 1 to 8 hops per call); the graph's inputs, outputs and function are
    the same either way.
    """
    import onnx

    if not model.causal:
        raise InputError(f"{type(model).__name__}: only causal models have a streaming step graph")
    if hops_per_step < 1 or n_streams < 1:
        raise InputError("hops_per_step and n_streams must be at least 1")
    out = Path(path)
    names = model.core_state_names()
    state = model.init_core_state(n_streams)
    if len(names) != len(state) or len(set(names)) != len(names):
        raise InputError(f"core_state_names() must name each of the {len(state)} states once")
    chunk = torch.randn(
        n_streams, hops_per_step * model.stream_hop, generator=torch.Generator().manual_seed(0)
    )
    was_training = model.training
    model.eval()
    try:
        core = model.for_export().eval()
        if lift_2d:
            core = lifted_core(core, chunk, state)
        with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            # RNN states are explicit inputs here, which is what that warning asks for
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
            torch.onnx.export(
                _StepGraph(core),
                (chunk, *state),
                str(tmp),
                input_names=[CHUNK_NAME, *names],
                output_names=[OUTPUT_NAME, *(f"{n}_out" for n in names)],
                dynamic_axes=(
                    {CHUNK_NAME: {1: "n_samples"}, OUTPUT_NAME: {2: "n_samples"}}
                    if dynamic
                    else None
                ),
                opset_version=opset,
                dynamo=False,
            )
            proto = onnx.load(str(tmp))
            for key, value in step_metadata(model, hops_per_step, n_streams, dynamic).items():
                proto.metadata_props.add(key=key, value=value)
            onnx.save(proto, str(tmp))
    finally:
        model.train(was_training)
    return out


def check_step_parity(
    model: Separator,
    path: str | os.PathLike[str],
    n_steps: int = 24,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    seed: int = 0,
) -> float:
    """Run ``n_steps`` calls of the step graph in ONNX Runtime and of ``call_core`` in torch on
    the same seeded noise, each threading its own state; returns the largest |difference| of
    outputs and states, raising :class:`ParityError` naming the step when it exceeds
    ``atol + rtol * |eager|``. A dynamic graph's calls take 1, 2, ... ``hops_per_step`` + 1 hops
    in turn, so lengths other than the traced one are checked too."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    n_streams, n_chunk = session.get_inputs()[0].shape
    hop, hops = int(meta["edgesep.stream_hop"]), int(meta["edgesep.hops_per_step"])
    names = [i.name for i in session.get_inputs()[1:]]
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    state = model.init_core_state(int(n_streams))
    feeds_state = [s.numpy() for s in state]
    worst = 0.0
    try:
        for i in range(n_steps):
            length = n_chunk if isinstance(n_chunk, int) else hop * (1 + i % (hops + 1))
            chunk = INPUT_RMS * torch.randn(int(n_streams), length, generator=gen)
            with torch.no_grad():
                want, state = model.call_core(chunk, state)
            got = session.run(
                None, {CHUNK_NAME: chunk.numpy(), **dict(zip(names, feeds_state, strict=True))}
            )
            feeds_state = got[1:]
            for label, g, w in [
                ("sources", got[0], want),
                *zip(names, got[1:], state, strict=True),
            ]:
                w_np = w.numpy()
                if g.shape != w_np.shape:
                    raise ParityError(f"{path}: step {i}: {label} shape {g.shape} != {w_np.shape}")
                diff = np.abs(g - w_np)
                worst = max(worst, float(diff.max(initial=0.0)))
                if not np.all(diff <= atol + rtol * np.abs(w_np)):
                    raise ParityError(
                        f"{path}: step {i}: {label} max |diff| {diff.max():.3g} exceeds "
                        f"atol={atol:g} + rtol={rtol:g}*|eager|"
                    )
    finally:
        model.train(was_training)
    return worst
