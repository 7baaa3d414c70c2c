"""An exported model as the torch-free runtime sees it: an ONNX graph, its metadata, its card.

The facts a runtime needs (sample rate, sources, frame hop, stream hop and delay, state names)
are in the ONNX file's metadata, written by :mod:`edgesep.export`; a JSON card beside the file
(``X.onnx`` -> ``X.json``: test scores, training record) is read when present and never
required. Two kinds of graph load:

- ``offline``: input ``mix`` (B, C, T), output ``sources`` (B, S, C, T);
- ``stream_step``: input ``chunk`` (n_streams, k * hop) plus explicit states, outputs
  ``sources`` and ``<state>_out`` (see :mod:`edgesep.export.streaming`); with
  ``edgesep.dynamic_hops`` any k per call.

Only numpy and onnxruntime are imported: this runs where there is no PyTorch.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgesep.errors import InputError

# edgesep/zoo, located rather than imported: importing edgesep.zoo would import torch
ZOO_DIR = Path(__file__).resolve().parents[1] / "zoo"
CHUNK_NAME = "chunk"  # the step graph's audio input (edgesep.export.streaming.CHUNK_NAME)
OFFLINE = "offline"
STREAM_STEP = "stream_step"

_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class ModelLoadError(InputError):
    """A model file the runtime cannot use; the message is ``PATH: problem`` on one line."""


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime knows of a graph, from its ONNX metadata.

    ``hop``: frame hop for chunk alignment; ``stream_hop``: samples per step-graph hop (0 for
    offline graphs); ``hops_per_step``: hops per call (the traced length; any for
    ``dynamic_hops`` graphs); ``stream_core_delay``: how late a step graph's output is.
    """

    path: Path
    graph: str
    family: str
    config: dict[str, Any] | None
    sample_rate: int
    n_src: int
    source_names: tuple[str, ...]
    causal: bool
    lookahead_samples: int
    hop: int
    stream_hop: int = 0
    hops_per_step: int = 0
    dynamic_hops: bool = False
    stream_core_delay: int = 0
    n_streams: int = 1
    state_names: tuple[str, ...] = ()

    def stream_delay(self, hops_per_step: int | None = None) -> int:
        """Samples from an input sample to its aligned output sample in a streaming session that
        calls the graph every ``hops_per_step`` hops: the core's delay plus the wait for a full
        call, ``stream_core_delay + hops_per_step * stream_hop - 1``."""
        if self.graph != STREAM_STEP:
            raise InputError(f"{self.path}: an offline graph has no streaming delay")
        k = hops_per_step or self.hops_per_step
        return self.stream_core_delay + k * self.stream_hop - 1


def _meta_int(meta: dict[str, str], key: str, path: Path, default: int | None = None) -> int:
    if key not in meta:
        if default is not None:
            return default
        raise ModelLoadError(f"{path}: no {key} metadata; export the model with edgesep export")
    try:
        return int(meta[key])
    except ValueError:
        raise ModelLoadError(f"{path}: metadata {key}={meta[key]!r} is not an integer") from None


def read_info(path: Path, session: ort.InferenceSession) -> ModelInfo:
    """The :class:`ModelInfo` of an open session on ``path``."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    inputs = {i.name: i for i in session.get_inputs()}
    is_step = CHUNK_NAME in inputs
    graph = meta.get("edgesep.graph", STREAM_STEP if is_step else OFFLINE)
    if graph not in (OFFLINE, STREAM_STEP) or (graph == STREAM_STEP) != is_step:
        raise ModelLoadError(f"{path}: unknown or inconsistent graph kind {graph!r}")
    n_src = _meta_int(meta, "edgesep.n_src", path)
    names = tuple(json.loads(meta.get("edgesep.source_names", "[]"))) or tuple(
        f"s{i + 1}" for i in range(n_src)
    )
    config = json.loads(meta.get("edgesep.config", "null"))
    common: dict[str, Any] = {
        "path": path,
        "graph": graph,
        "family": meta.get("edgesep.family", ""),
        "config": config if isinstance(config, dict) else None,
        "sample_rate": _meta_int(meta, "edgesep.sample_rate", path),
        "n_src": n_src,
        "source_names": names,
        "causal": bool(json.loads(meta.get("edgesep.causal", "false"))),
        "lookahead_samples": _meta_int(meta, "edgesep.lookahead_samples", path, 0),
        "hop": _meta_int(meta, "edgesep.hop", path, 1),
    }
    if graph == OFFLINE:
        return ModelInfo(**common)
    stream_hop = _meta_int(meta, "edgesep.stream_hop", path)
    named = json.loads(meta.get("edgesep.state_inputs", "[]"))
    missing = [n for n in named if n not in inputs]
    if missing:
        raise ModelLoadError(f"{path}: state inputs {missing} named in metadata are not inputs")
    n_streams = inputs[CHUNK_NAME].shape[0]
    return ModelInfo(
        **common,
        stream_hop=stream_hop,
        hops_per_step=_meta_int(meta, "edgesep.hops_per_step", path),
        dynamic_hops=bool(json.loads(meta.get("edgesep.dynamic_hops", "false"))),
        stream_core_delay=_meta_int(meta, "edgesep.stream_core_delay", path),
        n_streams=n_streams if isinstance(n_streams, int) else 1,
        state_names=tuple(n for n in inputs if n != CHUNK_NAME),
    )


def make_session(path: str | os.PathLike[str], threads: int = 1) -> ort.InferenceSession:
    """A CPU session on ``threads`` intra-op threads, operators run one at a time (as on a
    small edge CPU; it also keeps latencies comparable)."""
    if threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        problem = " ".join(str(exc).split())[:300]
        raise ModelLoadError(f"{path}: not a loadable ONNX model ({problem})") from exc


def resolve(source: str | os.PathLike[str]) -> Path:
    """The ``.onnx`` file of a bundled model name, an ``.onnx`` path, or an artifact path
    without suffix (``X`` -> ``X.onnx``)."""
    text = str(source)
    candidates = [ZOO_DIR / f"{text}.onnx"] if os.sep not in text else []
    path = Path(text)
    candidates += [path] if path.suffix == ".onnx" else [path.with_name(path.name + ".onnx")]
    for cand in candidates:
        if cand.is_file():
            return cand
    bundled = ", ".join(sorted(p.stem for p in ZOO_DIR.glob("*.onnx"))) or "none"
    raise ModelLoadError(
        f"{text}: no ONNX model found (bundled: {bundled}; or an .onnx file exported with "
        "edgesep export)"
    )


class Model:
    """An exported graph loaded in ONNX Runtime, with its metadata (``info``) and card.

    ``run_offline`` computes the offline model on one segment whichever the graph: an offline
    graph directly, a step graph by stepping it from its zero state over the segment (exactly
    the offline causal model, the core's delay removed).
    """

    def __init__(self, source: str | os.PathLike[str], threads: int = 1) -> None:
        self.path = resolve(source)
        self.threads = threads
        self.session = make_session(self.path, threads)
        self.info = read_info(self.path, self.session)
        card_path = self.path.with_suffix(".json")
        self.card: dict[str, Any] = {}
        if card_path.is_file():
            try:
                self.card = dict(json.loads(card_path.read_text(encoding="utf-8")))
            except (ValueError, TypeError) as exc:
                raise ModelLoadError(f"{card_path}: unreadable model card ({exc})") from exc
        self._state_dtypes = {
            i.name: _DTYPES.get(i.type, np.float32)
            for i in self.session.get_inputs()
            if i.name in self.info.state_names
        }
        self._state_shapes = {
            i.name: tuple(d if isinstance(d, int) else 1 for d in i.shape)
            for i in self.session.get_inputs()
            if i.name in self.info.state_names
        }
        outs = [o.name for o in self.session.get_outputs()]
        self._fetch = [outs[0], *(f"{n}_out" for n in self.info.state_names)]
        missing = [f for f in self._fetch[1:] if f not in outs]
        if missing:
            raise ModelLoadError(f"{self.path}: step graph lacks state outputs {missing}")

    @property
    def name(self) -> str:
        return self.path.stem

    # -- step graphs ----------------------------------------------------------------------------
    def init_state(self) -> dict[str, np.ndarray]:
        """Zero states (silence before t=0) for one call's ``n_streams`` streams."""
        return {
            n: np.zeros(self._state_shapes[n], self._state_dtypes[n]) for n in self.info.state_names
        }

    def step(
        self, chunk: np.ndarray, state: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One call of the step graph. Shape: (n_streams, k * hop) -> (n_streams, S, k * hop)."""
        out = self.session.run(self._fetch, {CHUNK_NAME: chunk, **state})
        return np.asarray(out[0]), dict(zip(self.info.state_names, out[1:], strict=True))

    # -- any graph ------------------------------------------------------------------------------
    def run_offline(self, x: np.ndarray) -> np.ndarray:
        """The offline model on one segment. Shape: (C, n) -> (S, C, n), float32."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.info.graph == OFFLINE:
            return self._run_offline_graph(x)
        return np.stack([self._step_segment(x[c]) for c in range(x.shape[0])], axis=1)

    def _run_offline_graph(self, x: np.ndarray) -> np.ndarray:
        inp = self.session.get_inputs()[0]
        n_chan = inp.shape[1] if isinstance(inp.shape[1], int) else x.shape[0]
        if n_chan == x.shape[0]:
            return np.asarray(self.session.run(None, {inp.name: x[None]})[0])[0]
        if n_chan != 1:
            raise InputError(f"{self.path}: graph takes {n_chan} channels, input has {x.shape[0]}")
        # a mono graph separates each channel as one batch item
        y = np.asarray(self.session.run(None, {inp.name: x[:, None]})[0])  # (C, S, 1, n)
        return y[:, :, 0].transpose(1, 0, 2)

    def _step_segment(self, x: np.ndarray) -> np.ndarray:
        """A mono segment through the step graph from zero state. Shape: (n,) -> (S, n)."""
        info = self.info
        step = info.hops_per_step * info.stream_hop
        delay, n = info.stream_core_delay, x.shape[-1]
        if info.dynamic_hops:  # one call on all of it, rounded up to whole hops
            step = info.stream_hop * math.ceil((n + delay) / info.stream_hop)
        total = step * math.ceil((n + delay) / step)
        padded = np.zeros((info.n_streams, total), np.float32)
        padded[0, :n] = x  # other streams of a multi-stream graph idle on zeros
        state = self.init_state()
        outs = []
        for a in range(0, total, step):
            y, state = self.step(padded[:, a : a + step], state)
            outs.append(y[0])
        return np.concatenate(outs, axis=-1)[:, delay : delay + n]
