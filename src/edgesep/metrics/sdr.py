"""BSS Eval SDR (v3 definition, 512-tap distortion filter) and its improvement, via fast_bss_eval.

The values are those of ``mir_eval.separation.bss_eval_sources`` (same filter length, same
SIR-based choice of permutation) at a fraction of its run time. Everything is computed in float64
with fast_bss_eval's torch backend, whatever the input type: its numpy backend mis-broadcasts
``np.linalg.solve`` on numpy >= 2 for matched (non-pairwise) sources. Torch inputs keep their
autograd graph; the result has the input's type (numpy float64, or a tensor of the input dtype).

References: Vincent, Gribonval & Févotte, "Performance measurement in blind audio source
separation", IEEE TASLP 14(4), 2006; Scheibler, "SDR - medium rare with fast computations",
ICASSP 2022 (fast_bss_eval).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple, TypeVar

import fast_bss_eval
import numpy as np
import torch

from edgesep.errors import InputError

Array = TypeVar("Array", np.ndarray, torch.Tensor)

FILTER_LENGTH = 512  # BSS Eval v3 / mir_eval default distortion filter, in taps


class BSSEval(NamedTuple):
    """SDR, SIR and SAR in dB (..., S), ordered as the references; ``perm`` (..., S) is the index
    of the estimate matched to each reference (``arange(S)`` when the permutation is not solved).
    """

    sdr: np.ndarray | torch.Tensor
    sir: np.ndarray | torch.Tensor
    sar: np.ndarray | torch.Tensor
    perm: np.ndarray | torch.Tensor


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run the filter solves on one torch thread. torch 2.13's CPU wheel (oneMKL) fails batched
    float64 solves of the 512-tap system on 2 threads ("Parameter 6 was incorrect on entry to
    DLASWP", then "Pivots given to lu_solve must all be greater or equal to 1"); the solves are
    small, so one thread costs little."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _as_float64(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.to(torch.float64)


def _prepare(
    est: np.ndarray | torch.Tensor, ref: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    est_t, ref_t = _as_float64(est), _as_float64(ref)
    if ref_t.dim() < 2 or est_t.shape != ref_t.shape:
        raise InputError(
            f"est and ref must have the same (..., S, T) shape, got {tuple(est_t.shape)} "
            f"and {tuple(ref_t.shape)}"
        )
    if bool((ref_t.detach().abs().amax(dim=-1) == 0).any()):
        # the distortion filter is undefined for a silent reference; mir_eval refuses it too
        raise InputError("every reference source must be non-silent (found an all-zero one)")
    return est_t, ref_t


def _like(value: torch.Tensor, template: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    if isinstance(template, torch.Tensor):
        if value.is_floating_point() and template.is_floating_point():
            return value.to(template.dtype)
        return value
    return value.detach().cpu().numpy()


def bss_eval(
    est: Array, ref: Array, solve_perm: bool = True, filter_length: int = FILTER_LENGTH
) -> BSSEval:
    """SDR, SIR, SAR of ``est`` against ``ref``, as ``mir_eval.separation.bss_eval_sources``.

    With ``solve_perm`` the estimates are matched to the references by the permutation that
    maximises the mean SIR (mir_eval's rule); without it ``est[..., j, :]`` is scored against
    ``ref[..., j, :]``.

    Shape: est, ref (..., S, T) -> each of sdr, sir, sar, perm (..., S)
    """
    est_t, ref_t = _prepare(est, ref)
    with _one_thread():
        out = fast_bss_eval.bss_eval_sources(
            ref_t, est_t, filter_length=filter_length, compute_permutation=solve_perm
        )
    if solve_perm:
        sdr_v, sir_v, sar_v, perm = out
    else:
        sdr_v, sir_v, sar_v = out
        perm = torch.arange(ref_t.shape[-2]).expand(ref_t.shape[:-1])
    perm = torch.as_tensor(perm, dtype=torch.int64)
    return BSSEval(*(_like(v, est) for v in (sdr_v, sir_v, sar_v, perm)))


def sdr(
    est: Array, ref: Array, solve_perm: bool = True, filter_length: int = FILTER_LENGTH
) -> Array:
    """BSS Eval SDR in dB of each reference source, ordered as the references.

    ``solve_perm=True`` first matches estimates to references as mir_eval does (best mean SIR);
    use ``solve_perm=False`` for sources already in reference order (it is also ~S times cheaper:
    only the S matched pairs are projected). Differentiable for torch inputs.

    Shape: est, ref (..., S, T) -> (..., S)
    """
    if solve_perm:
        return bss_eval(est, ref, True, filter_length).sdr  # type: ignore[return-value]
    est_t, ref_t = _prepare(est, ref)
    with _one_thread():
        value = -fast_bss_eval.sdr_loss(est_t, ref_t, filter_length=filter_length)
    return _like(value, est)  # type: ignore[return-value]


def sdri(
    est: Array,
    ref: Array,
    mix: Array,
    solve_perm: bool = True,
    filter_length: int = FILTER_LENGTH,
) -> Array:
    """SDR improvement: SDR of the estimates minus SDR of the unprocessed mixture, per source.

    Shape: est, ref (..., S, T), mix (..., T) -> (..., S)
    """
    est_sdr = sdr(est, ref, solve_perm, filter_length)
    ref_t, mix_t = _as_float64(ref), _as_float64(mix)
    if mix_t.shape != ref_t.shape[:-2] + ref_t.shape[-1:]:
        raise InputError(
            f"mix must be (..., T) matching ref (..., S, T) = {tuple(ref_t.shape)}, "
            f"got {tuple(mix_t.shape)}"
        )
    # the mixture's SDR against reference j depends on that reference alone: no permutation
    with _one_thread():
        mix_sdr = -fast_bss_eval.sdr_loss(
            mix_t.unsqueeze(-2).expand_as(ref_t), ref_t, filter_length=filter_length
        )
    return est_sdr - _like(mix_sdr, est)  # type: ignore[return-value]
