"""What one benchmark row measures: a model in one deployable form, its *variant*.

- ``torch-fp32``: the eager PyTorch model; its artifact is the safetensors file (or nothing on
  disk for an untrained registered config, whose bytes are then the fp32 parameters).
- ``onnx-fp32``: the exported offline graph, parity-checked against eager before it is used.
- ``onnx-int8``: that graph quantized by ONNX Runtime (QDQ, per-channel int8 weights, min-max
  ranges from a few calibration mixtures; see :mod:`edgesep.export.int8`).
- ``onnx``: an ``.onnx`` file given as the model, run as it is (e.g. a compressed artifact).

Every target keeps the float torch model it came from as ``reference``: the contract attributes
(rate, sources, hop, lookahead) and the MAC count come from it. ONNX variants are scored through
:class:`OrtSeparator`, so quality is measured on what ONNX Runtime computes, not on torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgesep.errors import InputError
from edgesep.models.base import Separator

VARIANTS = ("torch-fp32", "onnx-fp32", "onnx-int8", "onnx")
PARITY_SECONDS = (0.37, 1.3)


@dataclass
class Target:
    """One model in one variant, ready to profile and score."""

    name: str  # the row label, "<model>/<variant>"
    model: str  # the model as the user gave it (zoo name, config name, artifact path)
    variant: str
    backend: str  # "torch" or "ort"
    artifact: Path | None  # the file whose bytes are counted (None: not on disk)
    reference: Separator  # the float torch model, eval mode
    separator: Separator  # what separates the audio: ``reference`` or an OrtSeparator
    trained: bool

    @property
    def onnx_path(self) -> Path | None:
        return self.artifact if self.backend == "ort" else None


class OrtSeparator(Separator):
    """An exported offline graph run by ONNX Runtime, behind the Separator contract.

    It has no parameters; ``forward`` hands the mixture to the session. Chunking, resampling and
    rescaling come from :meth:`Separator.separate` as for any model, so a torch row and an ONNX
    row of the same model differ only in what computes each chunk.
    """

    family = "onnx"
    config_class = dict

    def __init__(self, path: str | Path, reference: Separator, threads: int = 1) -> None:
        super().__init__()
        from edgesep.bench.latency import ort_session

        self.path = Path(path)
        self.session = ort_session(self.path, threads)
        self.config = reference.config
        self.sample_rate = reference.sample_rate
        self.n_src = reference.n_src
        self.source_names = reference.source_names
        self.causal = reference.causal
        self.lookahead_samples = reference.lookahead_samples
        self.hop = reference.hop
        self._input = self.session.get_inputs()[0].name

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: (B, C, T) -> (B, S, C, T)."""
        feed = {self._input: mix.detach().cpu().numpy().astype(np.float32, copy=False)}
        return torch.from_numpy(self.session.run(None, feed)[0])


def load_reference(model: str | Path) -> tuple[Separator, bool]:
    """The float torch model of a zoo name, config name, artifact or exported ONNX file, and
    whether it carries trained weights (an ONNX file is rebuilt from its metadata's config,
    untrained: only its architecture is used, for MACs and the contract)."""
    from edgesep.models.zoo_registry import build, build_from_dict
    from edgesep.zoo import load, resolve

    path = Path(model)
    if path.suffix == ".onnx":
        meta = onnx_metadata(path)
        family, config = meta.get("edgesep.family"), meta.get("edgesep.config")
        if not family or not config or config == "null":
            raise InputError(
                f"{path}: no edgesep.family/edgesep.config metadata; export it with "
                "edgesep export so the profiler knows its architecture"
            )
        return build_from_dict(family, json.loads(config)).eval(), False
    if resolve(model) is not None:
        return load(model).eval(), True
    return build(str(model)).eval(), False


def onnx_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def _weights_file(model: str) -> Path | None:
    from edgesep.zoo import resolve

    weights = resolve(model)
    return weights if weights is not None and weights.is_file() else None


def build_target(
    model: str,
    variant: str,
    work_dir: Path,
    calibration: Callable[[int], Iterable[np.ndarray]] | None = None,
    threads: int = 1,
    label: str = "",
) -> Target:
    """Prepare ``model`` as ``variant``; exported files go to ``work_dir`` (atomically).

    ``onnx-int8`` needs ``calibration``: given the model's sample rate, it returns the
    calibration mixtures at that rate. Export failures (parity
    beyond tolerance) raise, naming the file. ``label`` names the row (default: the zoo name, or
    the file's stem).
    """
    from edgesep.export import check_parity, export_onnx
    from edgesep.export.int8 import quantize_int8

    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    is_onnx_file = Path(model).suffix == ".onnx"
    if is_onnx_file != (variant == "onnx"):
        raise InputError(f"{model}: variant 'onnx' is for .onnx files, and .onnx files only")
    reference, trained = load_reference(model)
    label = label or (Path(model).stem if Path(model).suffix else str(model))
    name = f"{label}/{variant}"
    if variant == "torch-fp32":
        return Target(
            name, model, variant, "torch", _weights_file(model), reference, reference, trained
        )
    if variant == "onnx":
        path = Path(model)
    else:
        work_dir.mkdir(parents=True, exist_ok=True)
        path = export_onnx(reference, work_dir / f"{label}.fp32.onnx")
        rate = reference.sample_rate
        check_parity(reference, path, [round(s * rate) for s in PARITY_SECONDS])
        if variant == "onnx-int8":
            if calibration is None:
                raise InputError(f"{name}: int8 quantization needs calibration mixtures")
            path = quantize_int8(path, work_dir / f"{label}.int8.onnx", calibration(rate))
    separator = OrtSeparator(path, reference, threads)
    return Target(name, model, variant, "ort", path, reference, separator, trained)


def artifact_bytes(target: Target) -> int:
    """Bytes on disk of the target's artifact; fp32 parameter bytes when it has no file."""
    if target.artifact is not None:
        return target.artifact.stat().st_size
    return 4 * target.reference.n_params()


def describe(target: Target) -> dict[str, Any]:
    return {
        "name": target.name,
        "model": target.model,
        "variant": target.variant,
        "backend": target.backend,
        "artifact": str(target.artifact) if target.artifact is not None else None,
        "trained": target.trained,
        "family": getattr(target.reference, "family", None),
        "sample_rate": target.reference.sample_rate,
        "causal": bool(target.reference.causal),
    }
