"""The ends of ``edgesep stream``: where blocks come from (a file's blocks regrouped, raw PCM on
stdin, the microphone) and the writer thread that turns the stream's output into files."""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import numpy as np

from edgesep.audio import AtomicWriter, StreamResampler
from edgesep.errors import InputError
from edgesep.runtime import StreamingSession
from edgesep.runtime.level import CausalRescaler

RAW_FORMATS: dict[str, np.dtype[Any]] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


def reblock(
    blocks: Iterator[np.ndarray], size: int, before_pad: Callable[[], None] | None = None
) -> Iterator[np.ndarray]:
    """Regroup (C, n) blocks into (C, size) blocks. The last may be shorter; with
    ``before_pad``, it is padded with zeros to ``size`` instead, after calling ``before_pad``."""
    pending: np.ndarray | None = None
    for block in blocks:
        buf = block if pending is None else np.concatenate([pending, block], axis=1)
        n_full = buf.shape[1] // size * size
        for a in range(0, n_full, size):
            yield buf[:, a : a + size]
        pending = buf[:, n_full:]
    if pending is not None and pending.shape[1]:
        if before_pad is not None:
            before_pad()
            pending = np.pad(pending, ((0, 0), (0, size - pending.shape[1])))
        yield pending


def stdin_blocks(fmt: str, n_channels: int, block_frames: int) -> Iterator[np.ndarray]:
    """Raw interleaved PCM from stdin as float32 (C, n) blocks."""
    dtype = RAW_FORMATS[fmt]
    frame_bytes = dtype.itemsize * n_channels
    stream = sys.stdin.buffer
    rest = b""
    while True:
        data = stream.read(block_frames * frame_bytes)
        if not data:
            break
        data = rest + data
        usable = len(data) // frame_bytes * frame_bytes
        rest = data[usable:]
        arr = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, n_channels).T
        scale = 1.0 / 32768.0 if dtype.kind == "i" else 1.0
        yield (arr.astype(np.float32) * scale).copy()


def check_mic() -> Any:
    """The sounddevice module, once it is known to have an input device; else a clear error."""
    try:
        import sounddevice as sd  # type: ignore[import-not-found,unused-ignore]
    except (ImportError, OSError):  # OSError: the package without its PortAudio library
        raise InputError(
            "--mic needs the sounddevice package (pip install 'edgesep[mic]') and an input device"
        ) from None
    try:
        sd.query_devices(kind="input")
    except Exception as exc:  # PortAudioError when there is no input device
        raise InputError(f"--mic: no audio input device ({exc})") from None
    return sd


def mic_blocks(
    rate: int, n_channels: int, block_frames: int, seconds: float
) -> Iterator[np.ndarray]:
    """Microphone input through sounddevice, ``seconds`` long, as (C, n) float32 blocks."""
    import queue

    sd = check_mic()
    q: queue.Queue[np.ndarray] = queue.Queue()
    n_total = int(seconds * rate)
    with sd.InputStream(
        samplerate=rate,
        channels=n_channels,
        blocksize=block_frames,
        dtype="float32",
        callback=lambda data, *_: q.put(np.array(data.T, copy=True)),
    ):
        done = 0
        while done < n_total:
            block = q.get()[:, : n_total - done]
            done += block.shape[1]
            yield block


def lower_thread_priority(niceness: int = 10) -> None:
    """Make the calling thread ``niceness`` nicer (Linux: niceness is per thread); elsewhere,
    or where the system refuses, do nothing: it is a preference, not a requirement."""
    with suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class OutputWriter:
    """The stream's output side, on its own thread: drop the delay, rescale, resample, write.

    The real-time loop only queues each push's input block and output; this thread does the
    rest, so a slow disk or a resampler's burst never delays a push (on the device's audio
    thread, file I/O would be the classic cause of dropouts). Items are handled in order, so
    the causal rescaler sees input and output exactly as aligned as in one thread; an error
    here stops the stream at its next block and is raised by :meth:`close`.
    """

    def __init__(
        self,
        session: StreamingSession,
        writers: list[AtomicWriter],
        in_rate: int,
        n_chan: int,
        rescale: bool,
        after_output: Callable[[], None] | None = None,
    ) -> None:
        sr, self.n_src, self.n_chan = session.sample_rate, session.n_src, n_chan
        self.after_output = after_output
        self.writers = writers
        self.rescaler = CausalRescaler(self.n_src, n_chan, sr) if rescale else None
        self.up = StreamResampler(sr, in_rate, self.n_src * n_chan)
        self.fifo: list[np.ndarray] = []  # model-rate input not yet matched by aligned output
        self.to_skip = session.delay
        self.n_written = 0
        self.limit: int | None = None  # output frames to write in all (the input's length)
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[tuple[str, np.ndarray] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="edgesep-stream-writer")
        self._thread.start()

    def put_input(self, block: np.ndarray) -> None:
        self._queue.put(("in", block))

    def put_output(self, y: np.ndarray) -> None:
        self._queue.put(("out", y))

    def close(self, n_in: int) -> None:
        """Write what is queued, then the resampler's tail, padded or cut to ``n_in`` frames."""
        self.limit = n_in
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error
        tail = self.up.flush()[:, : max(0, n_in - self.n_written)]
        short = n_in - self.n_written - tail.shape[1]
        if short > 0:  # soxr rounding can leave the round trip a sample short
            tail = np.pad(tail, ((0, 0), (0, short)))
        self._write(tail)

    def _loop(self) -> None:
        lower_thread_priority()  # the stream thread comes first when both want a CPU
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the stream stops at its next block
            kind, data = item
            try:
                if kind == "in":
                    self.fifo.append(data)
                else:
                    self._output(data)
                    if self.after_output is not None:
                        self.after_output()
            except BaseException as exc:  # re-raised on the main thread by close()
                self.error = exc

    def _aligned_mix(self, n: int) -> np.ndarray:
        """The next ``n`` input samples (C, n) at the model's rate, zeros past the end."""
        fifo = self.fifo
        have = np.concatenate(fifo, axis=1) if fifo else np.zeros((self.n_chan, 0), np.float32)
        fifo[:] = [have[:, n:]]
        head = have[:, :n]
        return np.pad(head, ((0, 0), (0, n - head.shape[1])))

    def _output(self, y: np.ndarray) -> None:
        cut = min(self.to_skip, y.shape[-1])
        self.to_skip -= cut
        y = y[..., cut:]
        if self.rescaler is not None:
            y = self.rescaler.process(y, self._aligned_mix(y.shape[-1]))
        flat = self.up.process(np.ascontiguousarray(y).reshape(self.n_src * self.n_chan, -1))
        if self.limit is not None:
            flat = flat[:, : max(0, self.limit - self.n_written)]
        self._write(flat)

    def _write(self, flat: np.ndarray) -> None:
        self.n_written += flat.shape[1]
        c = self.n_chan
        for i, w in enumerate(self.writers):
            w.write(flat[i * c : (i + 1) * c])
