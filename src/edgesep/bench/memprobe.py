"""Child process of :func:`edgesep.bench.memory.peak_rss`: load a model, run it once, report.

Usage: ``python -m edgesep.bench.memprobe {torch|ort|baseline-torch|baseline-ort} MODEL
--seconds S --threads T``. On success it prints one JSON line ``{"peak_rss_kib": ...}``: the
process's own resident-set high-water mark (``VmHWM``), read after the work is done.

Why not the parent's ``os.wait4`` rusage: Linux folds the address space a process had *before*
``exec`` into its ``ru_maxrss``, and ``subprocess`` starts children with ``vfork``, whose
pre-exec address space is the parent's. So a child's ``ru_maxrss`` is never below its parent's
peak (a test process with torch loaded: hundreds of MiB), whatever the child itself used.

The ORT path imports only numpy and onnxruntime, as on a device. ``memory.py`` therefore runs
this file as a script (``python -P path/memprobe.py``): ``-m edgesep.bench.memprobe`` would
first import ``edgesep.bench``, whose ``__init__`` imports torch (about 180 MiB of RSS). For the
same reason the torch-free ORT helpers that :mod:`edgesep.bench.latency` shares live here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesep.errors import InputError

if TYPE_CHECKING:
    import onnxruntime

MODES = ("torch", "ort", "baseline-torch", "baseline-ort")
# the step graph's audio input (edgesep.export.streaming.CHUNK_NAME; a test holds them equal)
CHUNK_NAME = "chunk"
# test-signal level: RMS 0.05 = -26 dBFS, about that of normalised speech (as export.onnx)
INPUT_RMS = 0.05

_ORT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def ort_session(path: str | os.PathLike[str], threads: int = 1) -> onnxruntime.InferenceSession:
    """A CPU session on ``threads`` intra-op threads, run sequentially (one operator at a time),
    which is how a small edge CPU runs it and what makes latencies comparable."""
    import onnxruntime as ort

    if threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def is_step_graph(session: onnxruntime.InferenceSession) -> bool:
    """True for a streaming step graph (it has the ``chunk`` input), False for an offline one."""
    return any(i.name == CHUNK_NAME for i in session.get_inputs())


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Seeded float32 Gaussian noise at ``INPUT_RMS``."""
    rng = np.random.default_rng(seed)
    return (INPUT_RMS * rng.standard_normal(shape)).astype(np.float32)


def _dims(shape: list[Any]) -> tuple[int, ...]:
    # a symbolic dimension (batch, time) is taken as 1
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in shape)


def offline_input_shape(session: onnxruntime.InferenceSession, n_time: int) -> tuple[int, ...]:
    """(1, C, n_time) for an offline graph's single input; C from the graph (1 if symbolic)."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 3:
        raise InputError("expected an offline graph with one (B, C, T) input")
    return (1, _dims(inputs[0].shape)[1], n_time)


class OrtStream:
    """One stream through a step graph: each call's output states are the next call's inputs.

    States start at zeros of their declared shapes and dtypes (silence before t=0); state input
    ``<name>`` is fed from output ``<name>_out``, as ``edgesep.export.streaming`` names them.
    """

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        if not is_step_graph(session):
            raise InputError(f"not a step graph: no {CHUNK_NAME!r} input")
        self.session = session
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        chunk = inputs.pop(CHUNK_NAME)
        self.chunk_shape = _dims(chunk.shape)
        if not isinstance(chunk.shape[-1], int):  # a dynamic-length graph: its suggested length
            meta = session.get_modelmeta().custom_metadata_map
            n = int(meta["edgesep.hops_per_step"]) * int(meta["edgesep.stream_hop"])
            self.chunk_shape = (*self.chunk_shape[:-1], n)
        missing = [f"{n}_out" for n in inputs if f"{n}_out" not in outputs]
        if missing:
            raise InputError(f"step graph has no state output(s) {missing}")
        sources = [o for o in outputs if not o.endswith("_out")]
        if len(sources) != 1:
            raise InputError(f"step graph needs exactly one non-state output, has {sources}")
        self.state_names = list(inputs)
        self._fetch = [sources[0], *(f"{n}_out" for n in self.state_names)]
        self.state: dict[str, np.ndarray] = {}
        for name, arg in inputs.items():
            if arg.type not in _ORT_DTYPES:
                raise InputError(f"state {name!r}: unsupported type {arg.type}")
            self.state[name] = np.zeros(_dims(arg.shape), dtype=_ORT_DTYPES[arg.type])

    def step(self, chunk: np.ndarray) -> np.ndarray:
        """Run one call on ``chunk`` (of ``chunk_shape``); returns its sources, keeps the state."""
        out = self.session.run(self._fetch, {CHUNK_NAME: chunk, **self.state})
        self.state = dict(zip(self.state_names, out[1:], strict=True))
        return np.asarray(out[0])


def _sample_rate(session: onnxruntime.InferenceSession) -> int:
    meta = session.get_modelmeta().custom_metadata_map
    if "edgesep.sample_rate" not in meta:
        raise InputError("the ONNX file has no edgesep.sample_rate metadata (export with edgesep)")
    return int(meta["edgesep.sample_rate"])


def run_ort(path: str, seconds: float, threads: int) -> None:
    """The offline graph once on ``seconds`` of noise, or a step graph over as many steps."""
    session = ort_session(path, threads)
    n_time = max(1, round(seconds * _sample_rate(session)))
    if is_step_graph(session):
        stream = OrtStream(session)
        rng = np.random.default_rng(0)
        # one chunk at a time, as a stream holds it (not the whole input)
        for _ in range(math.ceil(n_time / stream.chunk_shape[-1])):
            stream.step((INPUT_RMS * rng.standard_normal(stream.chunk_shape)).astype(np.float32))
    else:
        mix = noise(offline_input_shape(session, n_time))
        session.run(None, {session.get_inputs()[0].name: mix})


def run_torch(model_name: str, seconds: float, threads: int) -> None:
    """``model.separate`` (chunked, as users run it) on ``seconds`` of mono noise."""
    import torch

    from edgesep.zoo import load

    torch.set_num_threads(threads)
    model = load(model_name, allow_untrained=True)
    n_time = max(1, round(seconds * model.sample_rate))
    model.separate(noise((n_time,)), model.sample_rate)


_BASELINE_IMPORTS = {
    # the model family modules too, which load() imports through the registry
    "torch": (
        "torch",
        "edgesep.zoo",
        "edgesep.models.apply",
        "edgesep.models.convtasnet",
        "edgesep.models.bsrnn",
        "edgesep.models.liteunet",
    ),
    "ort": ("onnxruntime",),
}


def peak_rss_kib() -> int:
    """This process's resident-set high-water mark in KiB (since its exec, on Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="memprobe", description="peak RSS of one inference")
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("model", help="zoo name / artifact path (torch) or .onnx path (ort)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        if args.mode == "torch":
            run_torch(args.model, args.seconds, args.threads)
        elif args.mode == "ort":
            run_ort(args.model, args.seconds, args.threads)
        else:
            for name in _BASELINE_IMPORTS[args.mode.removeprefix("baseline-")]:
                importlib.import_module(name)
    except Exception as exc:  # the parent shows this line; a traceback would bury it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"peak_rss_kib": peak_rss_kib()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
