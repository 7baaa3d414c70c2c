"""Training checkpoints: model weights (safetensors), optimiser state and a JSON state file.

A checkpoint is a folder written under a temporary name and renamed into place, so a kill at any
moment leaves the previous checkpoint intact. The optimiser state is a plain state dict of
tensors and numbers, saved with ``torch.save`` and read back with ``weights_only=True`` (no
classes are unpickled).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from edgesep.atomic import atomic_dir


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    card: dict[str, Any] | None = None,
) -> Path:
    """Write ``folder`` (model.safetensors, optimizer.pt, state.json, card.json) atomically."""
    with atomic_dir(folder, overwrite=True) as tmp:
        weights = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
        if card is not None:
            (tmp / "card.json").write_text(json.dumps(card, indent=2))
    return folder


def load_checkpoint(
    folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restore ``model`` (and ``optimizer``) in place; returns the saved state dict."""
    if not (folder / "state.json").is_file():
        raise FileNotFoundError(f"{folder}: no checkpoint here (state.json missing)")
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    state: dict[str, Any] = json.loads((folder / "state.json").read_text())
    return state


# a resumed run records how its recipe changed (the card's training.config_changes)
def previous_config(out: Path) -> dict[str, Any]:
    """The config a run was last started with: from its checkpoint's card, else config.json."""
    card = out / "checkpoints" / "last" / "card.json"
    if card.is_file():
        return dict(json.loads(card.read_text())["training"]["config"])
    saved = out / "config.json"
    return dict(json.loads(saved.read_text())) if saved.is_file() else {}


def config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flat ``{"a.b": [old, new]}`` of the values that differ between two config dicts."""
    out: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(config_changes(a, b, f"{prefix}{key}."))
        elif a != b:
            out[f"{prefix}{key}"] = [a, b]
    return out
