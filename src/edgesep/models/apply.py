"""Running a Separator on audio of any length: overlapping chunks, cross-faded, streamed.

The chunking itself (overlap-add, bounded backlog, resampling in and out, file to file) is
torch-free and lives in :mod:`edgesep.chunking`, shared with the ONNX Runtime path
(:mod:`edgesep.runtime`); this module supplies what computes a chunk: the PyTorch model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgesep.chunking import (
    CHUNK_SECONDS,
    OVERLAP_SECONDS,
    RESCALE,
    OverlapAdd,
    rescale_to_mixture,
    separate_array_with,
    separate_file_with,
    unnamed_sources,
)
from edgesep.models.base import Separator

__all__ = ["ChunkedSeparator", "rescale_to_mixture", "separate_array", "separate_file"]


def _frame_hop(model: Separator) -> int:
    # Chunk starts land on multiples of the model's frame hop (when it has one), so every chunk
    # sees the frame grid the whole signal would: only then can chunked equal whole-file output.
    hop = model.hop
    return hop if isinstance(hop, int) and hop > 0 else 1


class ChunkedSeparator(OverlapAdd):
    """:class:`~edgesep.chunking.OverlapAdd` whose chunks ``model`` computes, in inference mode.

    ``reorder`` (default: when the model's sources are unnamed) keeps each source on one output
    across chunks and channels (:func:`~edgesep.chunking.align_sources`).

    Shape: process blocks (C, n) -> yields (S, C, m); the m add up to the total n exactly.
    """

    def __init__(
        self,
        model: Separator,
        chunk_seconds: float = CHUNK_SECONDS,
        overlap_seconds: float = OVERLAP_SECONDS,
        rescale: bool = RESCALE,
        reorder: bool | None = None,
    ) -> None:
        self.model = model
        param = next(iter(model.parameters()), None)
        self._device = param.device if param is not None else torch.device("cpu")
        super().__init__(
            self._forward,
            int(model.n_src),
            int(model.sample_rate),
            _frame_hop(model),
            chunk_seconds,
            overlap_seconds,
            rescale,
            unnamed_sources(model.source_names) if reorder is None else reorder,
        )

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """Shape: (C, n) -> (S, C, n)."""
        with torch.inference_mode():
            y = self.model(torch.from_numpy(x).to(self._device)[None])
        n_src = int(self.model.n_src)
        if tuple(y.shape) != (1, n_src, *x.shape):
            raise RuntimeError(
                f"{type(self.model).__name__} returned shape {tuple(y.shape)} for input "
                f"{(1, *x.shape)}; expected {(1, n_src, *x.shape)}"
            )
        return np.asarray(y[0].float().cpu().numpy(), dtype=np.float32)


def separate_array(
    model: Separator,
    waveform: np.ndarray,
    sample_rate: int,
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = OVERLAP_SECONDS,
    rescale: bool = RESCALE,
) -> np.ndarray:
    """Separate in-memory audio at any sample rate; the output keeps its rate and length.

    Channels are separated independently (the model folds them into its batch). ``rescale``
    brings the sources to the mixture's level (:func:`rescale_to_mixture`).

    Shape: (T,) -> (S, T); (C, T) -> (S, C, T).
    """
    chunker = ChunkedSeparator(model, chunk_seconds, overlap_seconds, rescale)
    return separate_array_with(chunker, waveform, sample_rate)


def separate_file(
    model: Separator,
    in_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = OVERLAP_SECONDS,
    block_seconds: float = 4.0,
    progress: Callable[[int, int], None] | None = None,
    subtype: str | None = "PCM_16",
    rescale: bool = RESCALE,
) -> dict[str, Path]:
    """Separate an audio file into ``out_dir/<input stem>/<source name>.wav``, streaming.

    Each output has the input's sample rate, channel count and exact length. Memory is bounded
    by a few chunks and blocks, independent of the file's duration; outputs appear atomically
    (all temp files are removed if anything fails). ``progress(done_frames, total_frames)`` is
    called as output is written. ``rescale`` brings the sources to the mixture's level
    (:func:`rescale_to_mixture`), so they do not clip. Returns {source name: path}.
    """
    chunker = ChunkedSeparator(model, chunk_seconds, overlap_seconds, rescale)
    return separate_file_with(
        chunker, model.source_names, in_path, out_dir, block_seconds, progress, subtype
    )
