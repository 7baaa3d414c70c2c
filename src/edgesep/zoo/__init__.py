"""The model zoo: small pretrained artifacts bundled with the package, plus registered configs.

Bundled models live beside this file as ``<name>.safetensors`` + ``<name>.json`` (see
:mod:`edgesep.models.artifact`). Registered configs (``convtasnet-tiny``, ...) are architectures
without trained weights; :func:`load` refuses them unless ``allow_untrained=True``, so nobody
separates audio with random weights by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgesep.config import to_dict
from edgesep.models.artifact import (
    WEIGHTS_SUFFIX,
    ArtifactError,
    artifact_paths,
    load_artifact,
    read_card,
)
from edgesep.models.base import Separator

__all__ = [
    "DEFAULT_MODEL",
    "EXAMPLES_DIR",
    "ZOO_DIR",
    "bundled_names",
    "list_entries",
    "load",
    "resolve",
    "weights_sha256",
]

DEFAULT_MODEL = "convtasnet-tiny-8k"
ZOO_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = ZOO_DIR / "examples"


def bundled_names() -> list[str]:
    """Names of the pretrained artifacts shipped with the package, sorted."""
    return sorted(p.name[: -len(WEIGHTS_SUFFIX)] for p in ZOO_DIR.glob(f"*{WEIGHTS_SUFFIX}"))


def _config_names() -> list[str]:
    from edgesep.models.zoo_registry import list_configs

    return [name for name, _ in list_configs()]


def resolve(name_or_path: str | Path) -> Path | None:
    """The weights path of a bundled name or an artifact path; None if it names neither."""
    text = str(name_or_path)
    if text in bundled_names():
        return artifact_paths(ZOO_DIR / text)[0]
    weights, card = artifact_paths(name_or_path)
    if weights.is_file() or card.is_file():
        return weights
    return None


def weights_sha256(name_or_path: str | Path) -> str | None:
    """The SHA-256 of a bundled model's or an artifact's weights, from its card: what a result
    file records so that it stays tied to the weights it was measured on."""
    weights = resolve(name_or_path)
    if weights is None:
        return None
    card = artifact_paths(weights)[1]
    return read_card(card).get("weights_sha256") if card.is_file() else None


def load(name_or_path: str | Path, allow_untrained: bool = False) -> Separator:
    """A model in eval mode: a bundled name, an artifact path, or (opt-in) an untrained config."""
    weights = resolve(name_or_path)
    if weights is not None:
        return load_artifact(weights)
    text = str(name_or_path)
    if text in _config_names():
        if allow_untrained:
            from edgesep.models.zoo_registry import build

            model: Separator = build(text)
            return model.eval()
        raise ArtifactError(
            f"{text}: a registered config without trained weights; train it "
            f"(edgesep train) or pass allow_untrained=True for random weights"
        )
    looks_like_path = any(sep in text for sep in "/\\") or Path(text).suffix in (
        WEIGHTS_SUFFIX,
        ".json",
    )
    if looks_like_path:
        raise ArtifactError(f"{text}: no artifact found (expected .safetensors + .json)")
    if text == DEFAULT_MODEL:
        raise ArtifactError(
            f"{text}: the default pretrained model is not installed in {ZOO_DIR}; "
            "pass a model artifact path instead"
        )
    bundled = ", ".join(bundled_names()) or "none"
    raise ArtifactError(
        f"{text}: unknown model; bundled: {bundled}; or give a path to a .safetensors artifact"
    )


def _artifact_entry(name: str) -> dict[str, Any]:
    weights, card_path = artifact_paths(ZOO_DIR / name)
    if card_path.is_file():
        card = read_card(card_path)
    else:  # the weights alone still describe the model
        model = load_artifact(weights)
        card = {
            "family": model.family,
            "n_params": model.n_params(),
            "sample_rate": model.sample_rate,
            "source_names": list(model.source_names),
            "causal": bool(model.causal),
        }
    return {
        "name": name,
        "kind": "bundled",
        "trained": True,
        "family": card.get("family"),
        "config": card.get("config"),
        "n_params": card.get("n_params"),
        "sample_rate": card.get("sample_rate"),
        "source_names": card.get("source_names"),
        "causal": card.get("causal"),
        "size_bytes": weights.stat().st_size,
        "metrics": card.get("metrics", {}),
        "path": str(weights),
    }


def _config_entry(name: str) -> dict[str, Any]:
    from edgesep.models.zoo_registry import MODELS, build

    # the meta device allocates no memory, so counting the paper model's 5 M params is free
    with torch.device("meta"):
        model: Separator = build(name)
    return {
        "name": name,
        "kind": "config",
        "trained": False,
        "family": MODELS.get(name).family,
        "config": to_dict(model.config),
        "n_params": model.n_params(),
        "sample_rate": model.sample_rate,
        "source_names": list(model.source_names),
        "causal": bool(model.causal),
        "size_bytes": None,
        "metrics": {},
        "path": None,
    }


def list_entries() -> list[dict[str, Any]]:
    """Bundled models first (trained, with card metrics), then registered configs (untrained).

    Each entry: name, kind ("bundled" | "config"), trained, family, config, n_params, sample_rate,
    source_names, causal, size_bytes (weights file; None for configs), metrics, path.
    """
    entries = [_artifact_entry(name) for name in bundled_names()]
    entries += [_config_entry(name) for name in _config_names()]
    return entries
