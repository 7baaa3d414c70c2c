"""Separating audio of any length with a chunk function: overlapping chunks, cross-faded, streamed.

Torch-free (numpy, soxr, soundfile through :mod:`edgesep.audio`), so both the PyTorch path
(:mod:`edgesep.models.apply`) and the ONNX Runtime path (:mod:`edgesep.runtime`) chunk the same
way and their outputs can be compared sample for sample. What computes a chunk is a callable
``run((C, n)) -> (S, C, n)``; this module owns everything around it.

The model only ever sees one chunk at a time, so memory is bounded by a few chunks whatever the
length of the input, and a file is separated block by block from disk to disk
(``iter_blocks -> StreamResampler -> OverlapAdd -> StreamResampler -> AtomicWriter``).
Chunks overlap by ``overlap`` samples; in each overlap the earlier chunk fades out and the later
one fades in with complementary raised-cosine windows (they sum to exactly 1), which hides the
chunk edges where a non-causal model lacks context.

A model trained with permutation-invariant training may put a speaker on a different output in
each chunk, and in each channel of a stereo file. With ``reorder`` (the default for models whose
sources are unnamed: s1, s2, ...) every chunk's channels are first put in the order of its first
channel, then its sources in the order that best matches the previous chunk over their overlap
(largest summed normalised correlation, on the first channel), before the cross-fade; so a
speaker stays on one output for the whole file. Models with named sources (music stems) keep
their fixed order.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from edgesep.audio import AtomicWriter, AudioWarning, StreamResampler, info, iter_blocks
from edgesep.errors import InputError

ChunkFn = Callable[[np.ndarray], np.ndarray]


# The chunking defaults of every path that separates long audio: the PyTorch one
# (Separator.separate, separate_file, `edgesep separate`) and the runtime's OfflineSession.
# Each takes the same three options under the same names, per call (the session's constructor
# sets its defaults).
CHUNK_SECONDS = 8.0
OVERLAP_SECONDS = 1.0
RESCALE = True
# more channels than this (or than samples) is taken for a transposed (T, C) array
MAX_CHANNELS = 8


def unnamed_sources(source_names: Sequence[str]) -> bool:
    """True for the generic names s1..sN of permutation-invariant models (speakers)."""
    return tuple(source_names) == tuple(f"s{i + 1}" for i in range(len(source_names)))


def _best_order(est: np.ndarray, ref: np.ndarray) -> tuple[int, ...]:
    """The order of ``est``'s sources that best matches ``ref``'s, by summed normalised
    correlation over every channel (an exhaustive search: S! orders, S is small).

    Shape: est (S, C, n), ref (S, C, n)
    """
    e = est.reshape(est.shape[0], -1).astype(np.float64)
    r = ref.reshape(ref.shape[0], -1).astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-12
    r /= np.linalg.norm(r, axis=1, keepdims=True) + 1e-12
    score = r @ e.T  # score[i, j]: reference i against estimate j
    orders = itertools.permutations(range(est.shape[0]))
    return max(orders, key=lambda p: sum(score[i, j] for i, j in enumerate(p)))


def align_sources(est: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Reorder a chunk's sources, per channel to match channel 0, then all channels together as
    channel 0 matches ``previous`` (the last chunk's output over the overlap, aligned with
    ``est``'s head). Deciding on channel 0 alone keeps a stereo file's first channel identical
    to the separation of that channel alone.

    Shape: est (S, C, n), previous (S, C, m) with m <= n, or None -> (S, C, n)
    """
    out = est.copy()
    for c in range(1, est.shape[1]):
        out[:, c] = est[list(_best_order(est[:, c : c + 1], est[:, :1])), c]
    if previous is not None and previous.shape[-1]:
        out = out[list(_best_order(out[:, :1, : previous.shape[-1]], previous[:, :1]))]
    return out


def rescale_to_mixture(est: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """Give the estimates, per channel, the least-squares gains that best rebuild the mixture.

    Models trained with a scale-invariant loss (SI-SNR) output sources at an arbitrary gain and
    sign, which clips when written as PCM and misleads listeners about levels. With gains
    ``a = argmin ||mix - sum_i a_i est_i||`` the sources come back at the mixture's level; the
    per-source SI-SNR of an utterance does not change.

    Shape: est (S, C, n), mix (C, n) -> (S, C, n)
    """
    out = np.empty_like(est)
    for c in range(est.shape[1]):
        basis = est[:, c, :].astype(np.float64).T  # (n, S)
        gains = np.linalg.lstsq(basis, mix[c].astype(np.float64), rcond=None)[0]
        out[:, c, :] = (est[:, c, :] * gains[:, None]).astype(est.dtype)
    return out


class OverlapAdd:
    """Streams audio at the model's rate through ``run`` in overlapping chunks.

    ``chunk_frames`` and ``overlap_frames`` are the seconds given, rounded to multiples of
    ``align`` (the model's frame hop: chunk starts on the frame grid are what lets chunked output
    equal whole-signal output); the overlap may be at most half a chunk. Input shorter than a
    chunk is separated in one call. The last chunk is taken flush with the end of the input (so
    it has full context) and only its new part is used. ``max_buffered_frames`` records the
    largest input backlog held during the last ``process`` call: below ``chunk + align`` frames,
    however long the stream and however large its blocks.

    Shape: process blocks (C, n) -> yields (S, C, m); the m add up to the total n exactly.
    """

    def __init__(
        self,
        run: ChunkFn,
        n_src: int,
        sample_rate: int,
        align: int = 1,
        chunk_seconds: float = CHUNK_SECONDS,
        overlap_seconds: float = OVERLAP_SECONDS,
        rescale: bool = True,
        reorder: bool = True,
    ) -> None:
        if chunk_seconds <= 0 or overlap_seconds < 0:
            raise InputError(
                f"need chunk_seconds > 0 and overlap_seconds >= 0, "
                f"got {chunk_seconds} and {overlap_seconds}"
            )
        self.run = run
        self.n_src = int(n_src)
        self.sample_rate = int(sample_rate)
        self.rescale = rescale
        self.reorder = reorder and self.n_src > 1
        self.align = max(1, int(align))
        sr, a = self.sample_rate, self.align
        self.chunk_frames = max(a, a * round(chunk_seconds * sr / a))
        self.overlap_frames = a * round(overlap_seconds * sr / a)
        if 2 * self.overlap_frames > self.chunk_frames:
            raise InputError(
                f"overlap ({overlap_seconds} s) must be at most half the chunk ({chunk_seconds} s)"
            )
        self.hop_frames = self.chunk_frames - self.overlap_frames
        # fade_out = 1 - fade_in: the pair sums to 1 in every sample of the overlap
        t = (np.arange(self.overlap_frames, dtype=np.float64) + 0.5) / max(1, self.overlap_frames)
        self.fade_in = (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)
        self.fade_out = (1.0 - self.fade_in).astype(np.float32)
        self.max_buffered_frames = 0

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Shape: (C, n) -> (S, C, n)."""
        est = np.asarray(self.run(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)
        if est.shape != (self.n_src, *x.shape):
            raise RuntimeError(
                f"the model returned shape {est.shape} for input {x.shape}; "
                f"expected {(self.n_src, *x.shape)}"
            )
        return rescale_to_mixture(est, x) if self.rescale else est

    def _crossfade(self, tail: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        """Put ``y``'s sources in the order of the previous chunk (``reorder``), then fade its
        raw ``tail`` out and the head of ``y`` in (in place)."""
        if self.reorder:
            y = align_sources(y, tail)
        if tail is not None and self.overlap_frames:
            ov = self.overlap_frames
            y[..., :ov] = tail * self.fade_out + y[..., :ov] * self.fade_in
        return y

    def process(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Separate a stream of (C, n) blocks, yielding (S, C, m) audio as soon as it is final."""
        chunk, hop, align = self.chunk_frames, self.hop_frames, self.align
        backlog = _Backlog()
        pos = 0  # start of the next chunk; everything before it has been emitted
        tail: np.ndarray | None = None  # raw output for [pos, pos + overlap) of the last chunk
        n_chan: int | None = None
        self.max_buffered_frames = 0

        for block in blocks:
            arr = np.asarray(block, dtype=np.float32)
            if arr.ndim != 2 or (n_chan is not None and arr.shape[0] != n_chan):
                raise InputError(f"expected ({n_chan or 'C'}, n) blocks, got shape {arr.shape}")
            n_chan = arr.shape[0]
            done = 0
            while done < arr.shape[1]:
                # never take in more than completes the next chunk: bounded whatever the block
                take = min(arr.shape[1] - done, pos + chunk - backlog.end)
                backlog.append(arr[:, done : done + take])
                done += take
                # keep what the next chunk, or a last chunk ending here, would need
                backlog.drop_before(min(pos, max(0, backlog.end - chunk) // align * align))
                self.max_buffered_frames = max(self.max_buffered_frames, len(backlog))
                if backlog.end - pos == chunk:
                    y = self._crossfade(tail, self._run(backlog.get(pos, pos + chunk)))
                    tail = y[..., hop:]
                    yield y[..., :hop]
                    pos += hop

        n_in = backlog.end
        if n_in == pos:
            return
        if tail is None:  # shorter than one chunk: a single call on all of it
            yield self._crossfade(None, self._run(backlog.get(0, n_in)))
        elif n_in - pos == self.overlap_frames:  # the last chunk ended flush with the input
            yield tail
        else:  # a full-length last chunk flush with the end; only its new part is used
            start = max(0, n_in - chunk) // align * align
            yield self._crossfade(tail, self._run(backlog.get(start, n_in))[..., pos - start :])


class _Backlog:
    """Input frames [start, end) of a stream, kept as a list of (C, n) pieces."""

    def __init__(self) -> None:
        self.pieces: list[np.ndarray] = []
        self.start = 0
        self.end = 0

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, piece: np.ndarray) -> None:
        self.pieces.append(piece)
        self.end += piece.shape[1]

    def drop_before(self, frame: int) -> None:
        while self.pieces and self.start + self.pieces[0].shape[1] <= frame:
            self.start += self.pieces.pop(0).shape[1]
        if self.pieces and self.start < frame:
            self.pieces[0] = self.pieces[0][:, frame - self.start :]
            self.start = frame

    def get(self, a: int, b: int) -> np.ndarray:
        """Shape: (C, b - a); consolidates the pieces so a chunk costs one copy."""
        if len(self.pieces) > 1:
            self.pieces = [np.concatenate(self.pieces, axis=1)]
        return self.pieces[0][:, a - self.start : b - self.start]


def separate_stream(
    chunker: OverlapAdd,
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    n_channels: int,
    n_frames: int,
) -> Iterator[np.ndarray]:
    """Resample to the chunker's rate, separate, resample back, and cut/pad to ``n_frames``.

    Shape: blocks (C, n) at ``sample_rate`` -> yields (S, C, m) at ``sample_rate``, sum m = T.
    """
    sr_model, n_src = chunker.sample_rate, chunker.n_src
    down = StreamResampler(sample_rate, sr_model, n_channels)
    up = StreamResampler(sr_model, sample_rate, n_src * n_channels)

    def model_rate_blocks() -> Iterator[np.ndarray]:
        for block in blocks:
            yield down.process(block)
        yield down.flush()

    n_out = 0

    def emit(flat: np.ndarray) -> np.ndarray:
        nonlocal n_out
        # soxr rounding can make the round trip a sample or two long: never exceed the input
        part = flat[:, : max(0, n_frames - n_out)]
        n_out += part.shape[1]
        return part.reshape(n_src, n_channels, -1)

    for sep in chunker.process(model_rate_blocks()):
        out = emit(up.process(sep.reshape(n_src * n_channels, -1)))
        if out.shape[-1]:
            yield out
    out = emit(up.flush())
    if out.shape[-1]:
        yield out
    if n_out < n_frames:  # ... or a sample or two short
        yield np.zeros((n_src, n_channels, n_frames - n_out), np.float32)


def check_waveform(waveform: np.ndarray) -> np.ndarray:
    """``waveform`` as float32 (T,) or (C, T), refusing empty or non-finite audio."""
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise InputError(f"expected non-empty (T,) or (C, T) audio, got shape {x.shape}")
    if x.ndim == 2 and (x.shape[0] > MAX_CHANNELS or x.shape[0] > x.shape[1]):
        raise InputError(
            f"got audio of shape {x.shape}: {x.shape[0]} channels of {x.shape[1]} samples? Audio "
            "is (T,) or channels first (C, T); pass a soundfile-style (T, C) array as x.T"
        )
    if not np.isfinite(x).all():
        raise InputError("waveform contains NaN or Inf samples")
    return x


def separate_array_with(chunker: OverlapAdd, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Separate in-memory audio at any sample rate; the output keeps its rate and length.

    Shape: (T,) -> (S, T); (C, T) -> (S, C, T).
    """
    x = check_waveform(waveform)
    x2 = x[None] if x.ndim == 1 else x
    parts = list(separate_stream(chunker, [x2], sample_rate, x2.shape[0], x2.shape[1]))
    out = np.concatenate(parts, axis=-1)
    return out[:, 0] if x.ndim == 1 else out


def separate_file_with(
    chunker: OverlapAdd,
    source_names: Sequence[str],
    in_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    block_seconds: float = 4.0,
    progress: Callable[[int, int], None] | None = None,
    subtype: str | None = "PCM_16",
) -> dict[str, Path]:
    """Separate an audio file into ``out_dir/<input stem>/<source name>.wav``, streaming.

    Each output has the input's sample rate, channel count and exact length. Memory is bounded
    by a few chunks and blocks, independent of the file's duration; outputs appear atomically
    (all temp files are removed if anything fails). ``progress(done_frames, total_frames)`` is
    called as output is written. Returns {source name: path}.
    """
    src = Path(in_path)
    meta = info(src)
    block_frames = max(1, math.ceil(block_seconds * meta.sample_rate))
    blocks = iter_blocks(src, block_frames)  # validates the file before anything is created
    folder = Path(out_dir) / src.stem
    paths = {name: folder / f"{name}.wav" for name in source_names}
    done = 0
    if progress is not None:
        progress(0, meta.n_frames)
    with ExitStack() as stack:
        writers = [
            stack.enter_context(AtomicWriter(p, meta.sample_rate, meta.n_channels, subtype))
            for p in paths.values()
        ]
        stream = separate_stream(chunker, blocks, meta.sample_rate, meta.n_channels, meta.n_frames)
        for out in stream:
            for writer, source in zip(writers, out, strict=True):
                writer.write(source)
            done += out.shape[-1]
            if progress is not None:
                progress(done, meta.n_frames)
    for writer in writers:
        if writer.clipped:
            share = 100 * writer.clipped / max(1, writer.samples_written)
            problem = f"{writer.clipped} samples clipped at full scale ({share:.2f} %); "
            warnings.warn(
                AudioWarning(writer.path, problem + "--subtype FLOAT keeps them"), stacklevel=2
            )
    return paths
