"""Whole-file separation on ONNX Runtime: chunked overlap-add, bounded memory, any sample rate.

The chunking is :mod:`edgesep.chunking`, the same code the PyTorch path runs, with the ONNX
graph computing each chunk (:meth:`Model.run_offline`: an offline graph, or a causal model's
step graph stepped from its zero state over the chunk). So for the same chunk settings the
output equals ``edgesep.models.Separator.separate`` up to float rounding. Files stream from disk
in blocks (``soundfile``) and are written block by block, so memory does not grow with length.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesep.chunking import (
    CHUNK_SECONDS,
    OVERLAP_SECONDS,
    RESCALE,
    OverlapAdd,
    separate_array_with,
    separate_file_with,
    unnamed_sources,
)
from edgesep.runtime.model import Model


class OfflineSession:
    """Offline separation with an exported model (a bundled name, an ``.onnx`` path, or a
    loaded :class:`Model`).

    ``chunk_seconds`` of audio per graph call, neighbours cross-faded over ``overlap_seconds``;
    ``rescale`` brings the sources to the mixture's level (least-squares gains per chunk).
    """

    def __init__(
        self,
        model: Model | str | os.PathLike[str],
        chunk_seconds: float = CHUNK_SECONDS,
        overlap_seconds: float = OVERLAP_SECONDS,
        rescale: bool = RESCALE,
        threads: int = 1,
    ) -> None:
        self.model = model if isinstance(model, Model) else Model(model, threads=threads)
        info = self.model.info
        self.sample_rate = info.sample_rate
        self.n_src = info.n_src
        self.source_names = info.source_names
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds
        self.rescale = rescale
        self._chunker()  # bad settings fail here, not on the first file

    def _chunker(
        self,
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
        rescale: bool | None = None,
    ) -> OverlapAdd:
        info = self.model.info
        return OverlapAdd(
            self.model.run_offline,
            info.n_src,
            info.sample_rate,
            info.hop,
            self.chunk_seconds if chunk_seconds is None else chunk_seconds,
            self.overlap_seconds if overlap_seconds is None else overlap_seconds,
            self.rescale if rescale is None else rescale,
            reorder=unnamed_sources(info.source_names),
        )

    def separate(
        self,
        waveform: np.ndarray,
        sample_rate: int,
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
        rescale: bool | None = None,
    ) -> np.ndarray:
        """Separate (T,) or (C, T) audio at ``sample_rate`` (resampled in and out), as
        ``Separator.separate`` does: the same options, per call; None keeps the session's.

        Shape: (T,) -> (S, T); (C, T) -> (S, C, T), at the input's rate and length.
        """
        chunker = self._chunker(chunk_seconds, overlap_seconds, rescale)
        return separate_array_with(chunker, waveform, sample_rate)

    def separate_file(
        self,
        in_path: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        block_seconds: float = 4.0,
        progress: Callable[[int, int], None] | None = None,
        subtype: str | None = "PCM_16",
        chunk_seconds: float | None = None,
        overlap_seconds: float | None = None,
        rescale: bool | None = None,
    ) -> dict[str, Path]:
        """Separate a file into ``out_dir/<input stem>/<source>.wav``, streaming from disk.

        Each output keeps the input's rate, channels and length and appears atomically;
        ``progress(done_frames, total_frames)`` follows the writing. Returns {source: path}.
        """
        return separate_file_with(
            self._chunker(chunk_seconds, overlap_seconds, rescale),
            self.source_names,
            in_path,
            out_dir,
            block_seconds,
            progress,
            subtype,
        )
