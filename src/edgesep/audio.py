"""Audio files in and out, resampling and level helpers, with one-line errors naming the file.

Arrays are float32 and channel-first: (C, T), or (T,) where a function says so. Reading checks
what would otherwise surface later as silent garbage (NaN/Inf samples, empty files, absurd sample
rates); writing never leaves a half-written file behind (temp file in the same folder, then an
atomic rename). ``iter_blocks``, ``StreamResampler`` and ``AtomicWriter`` give the same operations
in bounded memory for arbitrarily long files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr

from edgesep.errors import InputError

MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384_000
_EXT_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".aif": "AIFF"}
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


class AudioError(InputError):
    """A bad audio file or bad audio data headed for a file; the message is ``PATH: problem``."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")


class AudioWarning(UserWarning):
    """Audio that reads, but not as its file promises: cut short, or above full scale."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{Path(path)}: {' '.join(str(problem).split())}")


_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}
_SAMPLE_BYTES["DOUBLE"] = 8


def _wav_promised_frames(path: Path, n_channels: int) -> int | None:
    """The frames a WAV's ``data`` chunk header declares (libsndfile reports the frames that
    are really there, so a file cut short reads without complaint); None if not plain PCM WAV."""
    try:
        subtype = sf.info(str(path)).subtype
        with path.open("rb") as f:
            head = f.read(1 << 16)
    except (sf.SoundFileError, RuntimeError, OSError):
        return None
    width = _SAMPLE_BYTES.get(subtype)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE" or width is None:
        return None
    pos = 12
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos + 4 : pos + 8], "little")
        if head[pos : pos + 4] == b"data":
            return None if size == 0xFFFFFFFF else size // (width * n_channels)
        pos += 8 + size + (size & 1)
    return None


def _warn_short(path: Path, meta: AudioInfo) -> None:
    promised = (
        _wav_promised_frames(path, meta.n_channels) if path.suffix.lower() == ".wav" else None
    )
    if promised is not None and meta.n_frames < promised:
        warnings.warn(
            AudioWarning(
                path,
                f"only {meta.n_frames} of the {promised} frames its header promises are in the "
                "file (cut short?); separating what is there",
            ),
            stacklevel=4,
        )


def _warn_peak(path: Path, peak: float) -> None:
    if peak > 1.0:
        warnings.warn(
            AudioWarning(
                path,
                f"samples reach {peak:.2f}, above full scale: sources written as 16-bit PCM "
                "will clip (write them as float: --subtype FLOAT)",
            ),
            stacklevel=3,
        )


class AudioInfo(NamedTuple):
    sample_rate: int
    n_channels: int
    n_frames: int


def _sf_problem(err: Exception) -> str:
    # libsndfile's own message repeats the path; its short error string does not. For a file
    # it cannot decode (a broken MP3, say) it says the file does not exist: it does, here.
    text = str(getattr(err, "error_string", None) or err)
    if "does not exist" in text or "not a regular file" in text:
        return "its contents do not decode as audio"
    return text


def _check_rate(path: Path, sample_rate: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            path,
            f"unsupported sample rate {sample_rate} Hz "
            f"(expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz)",
        )


def _check_finite(path: Path, data: np.ndarray, offset: int = 0) -> None:
    if not np.isfinite(data).all():
        bad = int(np.flatnonzero(~np.isfinite(data).all(axis=0))[0]) if data.ndim == 2 else 0
        raise AudioError(path, f"contains NaN or Inf samples (first at frame {offset + bad})")


def info(path: str | os.PathLike[str]) -> AudioInfo:
    """Sample rate, channel count and length of an audio file, without reading its samples."""
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    if not p.is_file():
        raise AudioError(p, "not a regular file")
    try:
        i = sf.info(str(p))
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioError(p, f"not a readable audio file ({_sf_problem(err)})") from err
    return AudioInfo(int(i.samplerate), int(i.channels), int(i.frames))


def _checked_info(p: Path) -> AudioInfo:
    meta = info(p)
    _check_rate(p, meta.sample_rate)
    if meta.n_frames <= 0:
        raise AudioError(p, "empty audio file (0 frames)")
    _warn_short(p, meta)
    return meta


def read(path: str | os.PathLike[str], mono: bool = False) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC/OGG file as float32 (C, T) and its sample rate; (1, T) when ``mono``.

    Raises AudioError for a missing, unreadable or empty file, NaN/Inf samples, or a sample rate
    outside ``MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``.
    """
    p = Path(path)
    meta = _checked_info(p)
    try:
        data, _ = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioError(p, f"unreadable audio data ({_sf_problem(err)})") from err
    if data.shape[0] == 0:
        raise AudioError(p, "empty audio file (0 frames)")
    out = np.ascontiguousarray(data.T)
    _check_finite(p, out)
    _warn_peak(p, float(np.abs(out).max()))
    return (to_mono(out) if mono else out), meta.sample_rate


def iter_blocks(
    path: str | os.PathLike[str], block_frames: int, mono: bool = False
) -> Iterator[np.ndarray]:
    """Stream a file as float32 (C, n) blocks of ``block_frames`` (the last may be shorter).

    The file is checked up front like ``read`` (missing, unreadable, empty, sample rate); each
    block is checked for NaN/Inf as it arrives. Memory stays at one block whatever the length.
    """
    if block_frames < 1:
        raise InputError(f"block_frames must be >= 1, got {block_frames}")
    p = Path(path)
    _checked_info(p)  # fail now, not on the first next()
    return _blocks(p, block_frames, mono)


def _blocks(p: Path, block_frames: int, mono: bool) -> Iterator[np.ndarray]:
    offset = 0
    loud = False
    try:
        with sf.SoundFile(str(p)) as f:
            for block in f.blocks(block_frames, dtype="float32", always_2d=True):
                out = np.ascontiguousarray(block.T)
                _check_finite(p, out, offset)
                if not loud and out.size and float(np.abs(out).max()) > 1.0:
                    loud = True  # once per file
                    _warn_peak(p, float(np.abs(out).max()))
                offset += out.shape[1]
                yield to_mono(out) if mono else out
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioError(p, f"unreadable audio data ({_sf_problem(err)})") from err


def _file_format(p: Path) -> str:
    fmt = _EXT_FORMATS.get(p.suffix.lower(), p.suffix[1:].upper())
    if fmt not in sf.available_formats():
        raise AudioError(p, f"cannot write audio with extension {p.suffix!r}")
    return fmt


class AtomicWriter:
    """Streaming writer that only replaces ``path`` once every block is written.

    ``with AtomicWriter(path, sr, n_channels) as w: w.write(block)`` writes to a temp file in the
    destination folder and renames it over ``path`` on a clean exit; on an exception the temp
    file is removed and ``path`` is left as it was (and a folder it made, if left empty). Float
    subtypes store samples as given; any other subtype gets samples clipped to [-1, 1], counted
    in ``clipped`` (of ``samples_written``) for the caller to report. A failed write (a full
    disk) raises :class:`AudioError` naming the file and why.

    Shape: block (C, n) with C == ``n_channels``, or (n,) when ``n_channels`` is 1.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        n_channels: int,
        subtype: str | None = "PCM_16",
    ) -> None:
        self.path = Path(path)
        _check_rate(self.path, int(sample_rate))
        if n_channels < 1:
            raise AudioError(self.path, f"n_channels must be >= 1, got {n_channels}")
        self.format = _file_format(self.path)
        self.subtype = subtype or sf.default_subtype(self.format)
        if not sf.check_format(self.format, self.subtype):
            raise AudioError(
                self.path, f"subtype {self.subtype} cannot be written as {self.format}"
            )
        self.sample_rate = int(sample_rate)
        self.n_channels = n_channels
        self.frames_written = 0
        self.samples_written = 0
        self.clipped = 0
        self._clip = self.subtype not in _FLOAT_SUBTYPES
        self._made: list[Path] = []
        self._tmp: Path | None = None
        self._file: sf.SoundFile | None = None

    def __enter__(self) -> AtomicWriter:
        try:
            missing = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._made = missing  # innermost first: removed again if nothing is written
            tmp = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp"
            # O_EXCL: never clobber a stranger's file; mode 0o666 lets the umask decide
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as err:
            raise AudioError(self.path, f"cannot create file ({err.strerror or err})") from err
        self._tmp = tmp
        try:
            self._file = sf.SoundFile(
                str(tmp), "w", self.sample_rate, self.n_channels, self.subtype, format=self.format
            )
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, block: np.ndarray) -> None:
        """Append one block; see the class docstring for its shape."""
        if self._file is None:
            raise RuntimeError("AtomicWriter.write outside its `with` block")
        data = np.asarray(block)
        if data.ndim == 1 and self.n_channels == 1:
            data = data[None]
        if data.ndim != 2 or data.shape[0] != self.n_channels:
            raise AudioError(
                self.path, f"expected blocks of shape ({self.n_channels}, n), got {data.shape}"
            )
        _check_finite(self.path, data, self.frames_written)
        if self._clip:
            self.clipped += int(np.count_nonzero(np.abs(data) > 1.0))
            data = np.clip(data, -1.0, 1.0)
        try:
            self._file.write(np.ascontiguousarray(data.T))
        except (sf.SoundFileError, OSError) as err:
            raise AudioError(self.path, f"cannot write ({self._why(err)})") from err
        self.frames_written += data.shape[1]
        self.samples_written += data.size

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            assert self._file is not None and self._tmp is not None
            self._file.close()
            self._file = None
            with open(self._tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self._tmp, self.path)
            self._tmp = None
        except (sf.SoundFileError, OSError) as err:
            self._discard()
            raise AudioError(self.path, f"cannot write ({self._why(err)})") from err
        except BaseException:
            self._discard()
            raise

    def _why(self, err: BaseException) -> str:
        """Why a write failed: the OS's reason, or a full disk behind libsndfile's error."""
        if isinstance(err, OSError) and err.strerror:
            return err.strerror
        with contextlib.suppress(OSError):
            if shutil.disk_usage(self.path.parent).free < 1 << 20:
                return "no space left on device"
        return " ".join(str(err).split()) or type(err).__name__

    def _discard(self) -> None:
        if self._file is not None:
            # already failing; the temp file goes either way
            with contextlib.suppress(sf.SoundFileError, RuntimeError, OSError):
                self._file.close()
            self._file = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
        for folder in self._made:  # innermost first; a folder another file went into stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made = []


def write(
    path: str | os.PathLike[str],
    data: np.ndarray,
    sample_rate: int,
    subtype: str | None = "PCM_16",
) -> Path:
    """Write (T,) or (C, T) audio atomically, creating parent folders; returns the path.

    ``subtype=None`` takes the format's default (WAV/FLAC: PCM_16, OGG: VORBIS). Clipping policy
    as in :class:`AtomicWriter`. NaN/Inf samples are refused rather than written.
    """
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise AudioError(path, f"expected (T,) or (C, T) audio, got shape {arr.shape}")
    with AtomicWriter(path, sample_rate, arr.shape[0], subtype) as w:
        w.write(arr)
    return Path(path)


def _check_rates(sr_in: int, sr_out: int) -> None:
    if sr_in <= 0 or sr_out <= 0:
        raise InputError(f"sample rates must be positive, got {sr_in} -> {sr_out}")


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling along the last axis (soxr, quality HQ); identity when equal.

    Shape: (T,) -> (T',) or (C, T) -> (C, T'), T' ~= round(T * sr_out / sr_in).
    """
    _check_rates(sr_in, sr_out)
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    if arr.ndim not in (1, 2):
        raise InputError(f"resample expects (T,) or (C, T), got shape {arr.shape}")
    if sr_in == sr_out:
        return arr
    if arr.ndim == 1:
        return np.asarray(soxr.resample(arr, sr_in, sr_out, quality="HQ"))
    y = soxr.resample(np.ascontiguousarray(arr.T), sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(y.T)


class StreamResampler:
    """Block-by-block ``resample``: the concatenated outputs of ``process`` and ``flush`` equal
    ``resample`` of the whole signal, in memory independent of its length.

    Shape: process (C, n) -> (C, m); flush () -> (C, k). float32 throughout.
    """

    def __init__(self, sr_in: int, sr_out: int, n_channels: int) -> None:
        _check_rates(sr_in, sr_out)
        if n_channels < 1:
            raise InputError(f"n_channels must be >= 1, got {n_channels}")
        self.sr_in, self.sr_out, self.n_channels = sr_in, sr_out, n_channels
        self._stream = (
            None
            if sr_in == sr_out
            else soxr.ResampleStream(sr_in, sr_out, n_channels, dtype="float32", quality="HQ")
        )
        self._flushed = False

    def process(self, block: np.ndarray) -> np.ndarray:
        if self._flushed:
            raise RuntimeError("StreamResampler.process after flush")
        arr = np.asarray(block, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != self.n_channels:
            raise InputError(f"expected a ({self.n_channels}, n) block, got shape {arr.shape}")
        if self._stream is None:
            return arr
        if arr.shape[1] == 0:
            return np.zeros((self.n_channels, 0), np.float32)
        return np.ascontiguousarray(self._stream.resample_chunk(np.ascontiguousarray(arr.T)).T)

    def flush(self) -> np.ndarray:
        """End of stream: return the resampler's pending tail. Call once."""
        if self._flushed:
            raise RuntimeError("StreamResampler.flush called twice")
        self._flushed = True
        empty = np.zeros((0, self.n_channels), np.float32)
        if self._stream is None:
            return np.ascontiguousarray(empty.T)
        return np.ascontiguousarray(self._stream.resample_chunk(empty, last=True).T)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels. Shape: (C, T) -> (1, T); (T,) is returned as is."""
    arr = np.asarray(x)
    if arr.ndim == 1:
        return arr
    if arr.ndim != 2:
        raise InputError(f"to_mono expects (T,) or (C, T), got shape {arr.shape}")
    return arr.mean(axis=0, keepdims=True, dtype=np.float64).astype(arr.dtype, copy=False)


def peak_normalize(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale so the largest absolute sample is ``peak``; silence is returned unchanged.

    Shape: any -> same.
    """
    arr = np.asarray(x)
    top = float(np.max(np.abs(arr))) if arr.size else 0.0
    if top == 0.0:
        return arr.copy()
    return (arr * (peak / top)).astype(arr.dtype, copy=False)
