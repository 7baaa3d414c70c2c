"""Stateful chunk-by-chunk inference for causal models: ``init_state`` and ``step``.

A causal family implements a *core* that consumes exactly ``k * stream_hop`` new samples and
returns as many output samples, ``stream_core_delay`` samples late (its first
``stream_core_delay`` output samples belong to time before t=0), carrying its state (conv ring
buffers, RNN states, overlap-add tails) as a flat list of tensors. A flat tensor list is what an
ONNX step graph can take as explicit inputs and outputs (see ``edgesep.export.streaming``).

:class:`StreamingMixin` wraps that core so ``step`` accepts chunks of *any* size: it keeps the
samples that do not fill a hop, and returns exactly as many samples as it was given, delayed by
``stream_core_delay + stream_hop - 1`` samples, which every causal family makes equal to its
``lookahead_samples``. So for any chunking::

    concat(step outputs)[..., t] == offline(mix)[..., t - lookahead_samples]   (zeros for t < D)

The first ``lookahead_samples`` outputs are zeros; push that many zeros at the end to flush.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edgesep.errors import InputError


def quantize_model_input(model: object, x: torch.Tensor) -> torch.Tensor:
    """``x`` through a quantized model's model-level input quantizer (``input_quant``, attached
    by ``edgesep.compress.quant``); unchanged when there is none."""
    quant = getattr(model, "input_quant", None)
    return x if quant is None else quant(x)


def quantize_model_output(model: object, out: torch.Tensor) -> torch.Tensor:
    """``out`` through a quantized model's model-level output quantizer (``output_quant``, plus
    ``output_residual_quant`` on what it missed); unchanged when there is none. Both are
    per-tensor and elementwise, so chunk by chunk gives what the whole signal gives."""
    quant = getattr(model, "output_quant", None)
    if quant is None:
        return out
    coarse: torch.Tensor = quant(out)
    residual = getattr(model, "output_residual_quant", None)
    return coarse if residual is None else coarse + residual(out - coarse)


@dataclass(frozen=True)
class StreamState:
    """What ``step`` carries between calls. Never mutated: ``step`` returns a new one.

    ``core``: the family's tensors; ``pending``: (B, C, r < hop) input not yet processed;
    ``ready``: (B, S, C, m) output computed but not yet returned; ``skip``: how many of the
    core's next output samples still belong to time before t=0 (they are dropped).
    """

    core: tuple[torch.Tensor, ...]
    pending: torch.Tensor
    ready: torch.Tensor
    skip: int


class StreamingMixin:
    """``init_state`` / ``step`` for a Separator whose family implements the core methods."""

    n_src: int
    causal: bool
    lookahead_samples: int
    # granularity of the core in samples, and how late the core's output is
    stream_hop: int = 1
    stream_core_delay: int = 0

    # -- implemented by causal families -------------------------------------------------------
    def init_core_state(self, n_batch: int) -> list[torch.Tensor]:
        """The core's initial state for ``n_batch`` mono streams (zeros: silence before t=0)."""
        raise NotImplementedError(f"{type(self).__name__} has no streaming core")

    def step_core(
        self, x: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Shape: (B, k * stream_hop) -> (B, S, k * stream_hop), k >= 1; B mono streams."""
        raise NotImplementedError(f"{type(self).__name__} has no streaming core")

    def core_state_names(self) -> list[str]:
        """One name per core state tensor (the ONNX step graph's input/output names)."""
        n = len(self.init_core_state(1))
        return [f"state{i}" for i in range(n)]

    def call_core(
        self, x: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One core call as the stream makes it: ``step_core`` between a quantized model's
        model-level input and output quantizers (they hook ``forward``, which a stream never
        calls); just ``step_core`` for a float model. What ``step`` and the ONNX step graph run.
        """
        y, new_state = self.step_core(quantize_model_input(self, x), state)
        return quantize_model_output(self, y), new_state

    # -- the public API -----------------------------------------------------------------------
    @property
    def stream_delay(self) -> int:
        """Samples between an input sample and the output sample that ``step`` aligns to it."""
        return self.stream_core_delay + self.stream_hop - 1

    def init_state(self, n_batch: int = 1, n_chan: int = 1) -> StreamState:
        """A fresh stream of ``n_batch`` x ``n_chan`` channels (channels run independently)."""
        if not self.causal:
            raise InputError(
                f"{type(self).__name__}: streaming needs a causal config (causal=True)"
            )
        core = tuple(self.init_core_state(n_batch * n_chan))
        ref = core[0] if core else torch.zeros(0)
        pending = torch.zeros(n_batch, n_chan, 0, dtype=ref.dtype)
        ready = torch.zeros(n_batch, self.n_src, n_chan, self.stream_delay, dtype=ref.dtype)
        return StreamState(core, pending, ready, self.stream_core_delay)

    @torch.no_grad()
    def step(self, chunk: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Feed ``chunk`` (B, C, n), any n >= 0; returns (B, S, C, n) output and the new state."""
        if chunk.dim() != 3 or chunk.shape[:2] != state.pending.shape[:2]:
            raise InputError(
                f"expected a chunk (B, C, n) with (B, C) = {tuple(state.pending.shape[:2])}, "
                f"got shape {tuple(chunk.shape)}"
            )
        n_batch, n_chan, n_new = chunk.shape
        buf = torch.cat([state.pending, chunk.to(state.pending.dtype)], dim=-1)
        n_ready = buf.shape[-1] // self.stream_hop * self.stream_hop
        core, ready, skip = state.core, state.ready, state.skip
        if n_ready:
            x = buf[..., :n_ready].reshape(n_batch * n_chan, n_ready)
            y, new_core = self.call_core(x, list(core))
            core = tuple(new_core)
            y = y.reshape(n_batch, n_chan, self.n_src, n_ready).transpose(1, 2)
            # the core's first stream_core_delay samples precede t=0: the delay is in `ready`
            dropped = min(skip, n_ready)
            ready = torch.cat([ready, y[..., dropped:]], dim=-1)
            skip -= dropped
        out = ready[..., :n_new]
        return out, StreamState(core, buf[..., n_ready:], ready[..., n_new:], skip)
