"""Packed palettised weights: k-means indices + codebooks, so the bytes on disk really shrink.

A palettised model keeps ordinary float weights in memory (each clustered tensor holds at most
``2^b`` distinct values), but its ``state_dict`` is packed by a hook: every float tensor goes
into one of three flat tensors, so safetensors writes three blobs and a tiny header:

- ``palette.indices`` (uint8): each clustered tensor's centroid indices, ``b`` bits each, packed
  little-end first, a tensor's indices starting on a byte boundary;
- ``palette.codebooks`` (float32): each clustered tensor's ``2^b`` centroids (unused ones 0);
- ``palette.raw`` (float32, or float16 with ``raw_fp16``): every other float tensor (biases,
  norms, BN statistics), flattened; or, with ``raw_bits``, their indices into one shared
  codebook ``palette.raw_codebook`` (they are clustered together).

Only a state dict for storage is packed: one asked with ``keep_vars=True`` (the live
variables, which tracers such as the ONNX exporter read) stays plain. The layout follows from
the plan (tensor name -> bits, in order) and the model's own shapes, so
nothing else needs storing; a load hook unpacks the blobs back into the named tensors. The plan
travels in the compression record of the ``cluster`` pass, whose replayer re-attaches the hooks
before the weights are loaded. Hand-written because no maintained library packs sub-byte
palettes for safetensors (coremltools palettises only for Core ML).

References: Han et al., "Deep Compression", ICLR 2016 (weight sharing, codebook + indices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgesep.errors import InputError

KEYS = ("palette.indices", "palette.codebooks", "palette.raw")  # + "palette.raw_codebook"


def pack_bits(idx: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integers in [0, 2^bits) into bytes, ``bits`` each, lowest bits first.

    Shape: (n,) int -> (ceil(n * bits / 8),) uint8
    """
    if not 1 <= bits <= 8:
        raise InputError(f"bits must be in 1..8, got {bits}")
    v = idx.to(torch.int64).flatten()
    if v.numel() and (v.min() < 0 or v.max() >= 2**bits):
        raise InputError(f"indices out of range for {bits} bits")
    shifts = torch.arange(bits, dtype=torch.int64)
    bitstream = ((v[:, None] >> shifts) & 1).flatten()
    bitstream = torch.cat([bitstream, bitstream.new_zeros((-bitstream.numel()) % 8)])
    weights = 1 << torch.arange(8, dtype=torch.int64)
    return (bitstream.view(-1, 8) * weights).sum(1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`. Shape: (m,) uint8 -> (n,) int64"""
    bitstream = ((packed.to(torch.int64)[:, None] >> torch.arange(8)) & 1).flatten()
    bitstream = bitstream[: n * bits].view(n, bits)
    return (bitstream * (1 << torch.arange(bits, dtype=torch.int64))).sum(1)


def packed_bytes(n: int, bits: int) -> int:
    return (n * bits + 7) // 8


@dataclass
class PaletteHooks:
    """The state-dict hooks of a palettised model: ``plan`` maps tensor name -> bits.

    ``raw_bits`` > 0: the tensors outside the plan share one codebook of ``2^raw_bits`` values
    (``palette.raw`` then holds their packed indices, ``palette.raw_codebook`` the values).
    ``enabled`` is False while the plain state dict is read (and after :func:`detach_palette`);
    ``armed`` is False on a replayed model until its packed weights are loaded (its random
    initial weights are not clustered). No handles are kept, so a deep copy of the model
    carries working hooks of its own.
    """

    plan: dict[str, int]
    raw_fp16: bool = False
    raw_bits: int = 0
    enabled: bool = True
    armed: bool = True

    def pack(self, module: nn.Module, sd: dict[str, Any], prefix: str, meta: Any) -> None:
        """state_dict post-hook: replace the float tensors by the packed blobs."""
        if prefix or not self.enabled or not self.armed:
            return  # only the root's state dict is packed
        if any(isinstance(v, nn.Parameter) for v in sd.values()):
            return  # state_dict(keep_vars=True): live variables for tracers, not for storage
        dtype = torch.float16 if self.raw_fp16 else torch.float32
        indices: list[torch.Tensor] = []
        codebooks: list[torch.Tensor] = []
        raw: list[torch.Tensor] = []
        for name in [k for k, v in sd.items() if v.is_floating_point()]:
            t = sd.pop(name).detach()
            bits = self.plan.get(name)
            if bits is None:
                raw.append(t.flatten().float())
                continue
            indices.append(self._indices(name, t, bits, codebooks))
        sd["palette.indices"] = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.uint8)
        sd["palette.codebooks"] = torch.cat(codebooks) if codebooks else torch.zeros(0)
        flat = torch.cat(raw) if raw else torch.zeros(0)
        if self.raw_bits:
            books: list[torch.Tensor] = []
            sd["palette.raw"] = self._indices("the unclustered tensors", flat, self.raw_bits, books)
            sd["palette.raw_codebook"] = books[0]
        else:
            sd["palette.raw"] = flat.to(dtype)

    @staticmethod
    def _indices(name: str, t: torch.Tensor, bits: int, books: list[torch.Tensor]) -> torch.Tensor:
        values, idx = torch.unique(t.flatten().float(), return_inverse=True)
        if values.numel() > 2**bits:
            raise InputError(
                f"palette: {name} has {values.numel()} distinct values, more than 2^{bits}; "
                "it changed after clustering (cluster last, or re-run the cluster pass)"
            )
        book = torch.zeros(2**bits)
        book[: values.numel()] = values
        books.append(book)
        return pack_bits(idx, bits)

    def unpack(self, module: nn.Module, sd: dict[str, Any], prefix: str, *_: Any) -> None:
        """load_state_dict pre-hook: rebuild the named float tensors from the blobs."""
        if prefix or not self.enabled or "palette.indices" not in sd:
            return
        idx_blob, books, raw = (sd.pop(k) for k in KEYS)
        state = {k: v for k, v in plain_state(module).items() if v.is_floating_point()}
        if self.raw_bits:
            n_raw = sum(v.numel() for k, v in state.items() if k not in self.plan)
            raw = sd.pop("palette.raw_codebook")[unpack_bits(raw, self.raw_bits, n_raw)]
        i_off = b_off = r_off = 0
        for name, ref in state.items():
            n, bits = ref.numel(), self.plan.get(name)
            if bits is None:
                sd[name] = raw[r_off : r_off + n].float().view(ref.shape)
                r_off += n
                continue
            m = packed_bytes(n, bits)
            idx = unpack_bits(idx_blob[i_off : i_off + m], bits, n)
            sd[name] = books[b_off : b_off + 2**bits][idx].view(ref.shape)
            i_off, b_off = i_off + m, b_off + 2**bits
        if (i_off, b_off, r_off) != (idx_blob.numel(), books.numel(), raw.numel()):
            raise InputError("palette: packed blobs do not match the model's tensors")
        self.armed = True


class _Hook:
    """A hook object (torch tags public hooks with an attribute, which bound methods refuse)."""

    def __init__(self, hooks: PaletteHooks, method: str) -> None:
        self.hooks = hooks
        self.method = method

    def __call__(self, *args: Any) -> None:
        getattr(self.hooks, self.method)(*args)


def palette_of(model: nn.Module) -> PaletteHooks | None:
    """The active palette hooks of ``model``, if any."""
    hooks = getattr(model, "_palette_hooks", None)
    return hooks if isinstance(hooks, PaletteHooks) and hooks.enabled else None


def plain_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict without the palette packing."""
    hooks = palette_of(module)
    if hooks is None:
        return dict(module.state_dict(keep_vars=True))
    hooks.enabled = False
    try:
        return dict(module.state_dict(keep_vars=True))
    finally:
        hooks.enabled = True


def attach_palette(
    model: nn.Module,
    plan: dict[str, int],
    raw_fp16: bool = False,
    raw_bits: int = 0,
    armed: bool = True,
) -> nn.Module:
    """Make ``model``'s state dict packed (see the module docstring); returns ``model``.

    ``armed=False`` (a replay before loading): packing starts once packed weights are loaded.
    """
    detach_palette(model)
    missing = sorted(set(plan) - set(plain_state(model)))
    if missing:
        raise InputError(f"palette: no tensor named {missing[0]} in the model")
    hooks = PaletteHooks(dict(plan), raw_fp16, raw_bits, armed=armed)
    model.register_state_dict_post_hook(_Hook(hooks, "pack"))
    model.register_load_state_dict_pre_hook(_Hook(hooks, "unpack"))
    object.__setattr__(model, "_palette_hooks", hooks)
    return model


def detach_palette(model: nn.Module) -> None:
    """Turn the packing off (the state dict is plain again)."""
    hooks = palette_of(model)
    if hooks is not None:
        hooks.enabled = False
        object.__delattr__(model, "_palette_hooks")
