"""edgesep: audio source separation for edge devices.

Public API: :func:`load_model`, :func:`create_model`, :func:`list_models`, :func:`separate`,
``__version__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "create_model", "list_models", "load_model", "separate"]

if TYPE_CHECKING:
    import numpy as np

    from edgesep.models.base import Separator


def load_model(name_or_path: str) -> Separator:
    """Load a bundled zoo model by name, or an artifact (``.safetensors`` + card) by path."""
    from edgesep.zoo import load

    return load(name_or_path)


def create_model(name: str, **overrides: Any) -> Separator:
    """An untrained model of any registered config (``edgesep models`` lists them), with config
    field ``overrides`` (timm's convention: ``create_model("convtasnet-tiny", n_src=3)``)."""
    from edgesep.models.zoo_registry import build

    return build(name, **overrides)


def list_models() -> list[dict[str, Any]]:
    """The zoo: bundled pretrained models and registered configs, one dict each."""
    from edgesep.zoo import list_entries

    return list_entries()


def separate(
    waveform: np.ndarray, sample_rate: int, model: str | Separator | None = None
) -> np.ndarray:
    """Separate ``waveform`` (T,) or (C, T) into (S, T) or (S, C, T) with a zoo model."""
    from edgesep.zoo import DEFAULT_MODEL

    sep = load_model(model or DEFAULT_MODEL) if not hasattr(model, "separate") else model
    return sep.separate(waveform, sample_rate)  # type: ignore[union-attr]
