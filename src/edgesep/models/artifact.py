"""Model artifacts: safetensors weights plus a JSON model card, never pickle.

An artifact is a pair of files sharing a stem: ``<stem>.safetensors`` holds the weights and, in
its header metadata, the family and config needed to rebuild the model; ``<stem>.json`` is the
human-readable card (config, parameter count, sources, software versions, the weights' SHA-256,
and whatever the caller adds: training data cards, metrics, seed, command). The weights file
alone is enough to load the model; the card, when present, must match the weights it describes.

Both files are written to temporaries and renamed into place, so a failed save never leaves a
half-written artifact behind.

Compressed models carry their *compression records* (``model.compression_records``, a JSON list,
one record per pass): they are saved in the card and in the weights metadata (key ``records``).
Records of passes that change the model's structure (``"replay": true``: structured pruning,
palettisation, fake-quant insertion...) are replayed on the freshly built model before the
weights are loaded, by the replayer registered under the record's ``"pass"`` name in
:data:`REPLAYERS`. The replayers live above this layer (``edgesep.compress``). One that is not
registered yet is found through the package's ``edgesep.replayers`` entry points (pyproject.toml:
pass name -> ``module:function``), the standard plugin table, so models import no layer above
them and loading a record imports only the module of its own pass (a cluster record never needs
Torch-Pruning). Compressed artifacts load wherever models do (profile, bench, export, evaluate).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from edgesep.atomic import atomic_path
from edgesep.config import to_dict
from edgesep.errors import InputError
from edgesep.models.base import Separator
from edgesep.registry import Registry

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"
FORMAT = "edgesep-artifact"
FORMAT_VERSION = 1

Replayer = Callable[[Separator, dict[str, Any]], Separator]
# pass name -> replay(model, record) -> model (the same shapes the pass produced)
REPLAYERS: Registry[Replayer] = Registry("compression replayer")
# the entry-point group that names each pass's replayer (see the module docstring)
REPLAYER_ENTRY_POINTS = "edgesep.replayers"
RECORDS_ATTR = "compression_records"


class ArtifactError(InputError):
    """A missing, corrupt or inconsistent artifact; the message names the file."""


def artifact_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, card) paths of the artifact at ``path`` (the stem, or either file)."""
    p = Path(path)
    if p.suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX):
        p = p.with_suffix("")
    return p.with_name(p.name + WEIGHTS_SUFFIX), p.with_name(p.name + CARD_SUFFIX)


def software_versions() -> dict[str, str]:
    """Versions of the software that produced an artifact."""
    import safetensors

    from edgesep import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "edgesep": __version__,
    }


def _brief(exc: BaseException, limit: int = 300) -> str:
    """An exception message on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_records(model: Separator) -> list[dict[str, Any]]:
    """The compression records a model carries (a copy; empty for an uncompressed model)."""
    return [dict(r) for r in getattr(model, RECORDS_ATTR, [])]


def set_records(model: Separator, records: list[dict[str, Any]]) -> None:
    """Attach compression records to ``model`` (a plain attribute, JSON only)."""
    object.__setattr__(model, RECORDS_ATTR, [dict(r) for r in records])


def find_replayer(name: str, index: int = 0) -> Replayer:
    """The replayer of pass ``name``: registered, or loaded from its entry point."""
    if name in REPLAYERS:
        return REPLAYERS.get(name)
    points = entry_points(group=REPLAYER_ENTRY_POINTS, name=name)
    if not points:
        known = sorted({*REPLAYERS.names(), *entry_points(group=REPLAYER_ENTRY_POINTS).names})
        raise ArtifactError(
            f"compression record {index}: no replayer for pass {name!r} (known: "
            f"{', '.join(known)}); was the artifact written by a newer edgesep?"
        )
    fn: Replayer = next(iter(points)).load()
    return fn


def replay_records(model: Separator, records: list[dict[str, Any]]) -> Separator:
    """Replay the structural records on ``model`` in order and attach all records to it.

    Records without ``"replay": true`` change values only and need nothing here.
    """
    for i, record in enumerate(records):
        if not record.get("replay"):
            continue
        name = str(record.get("pass", ""))
        model = find_replayer(name, i)(model, record)
        if not isinstance(model, Separator):
            raise TypeError(f"replayer {name!r} (record {i}) did not return a Separator")
    set_records(model, records)
    return model


def save_artifact(model: Separator, path: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Write ``<path>.safetensors`` and ``<path>.json`` for ``model``; returns the weights path.

    ``card`` adds caller facts (training data cards, metrics, seed, command); it must be JSON
    serialisable. Keys derived from the model (family, config, n_params, ...) always win. The
    model's compression records (see the module docstring) go in the card and the metadata.
    """
    weights_path, card_path = artifact_paths(path)
    family = getattr(model, "family", None)
    if not isinstance(model, Separator) or not family:
        raise ArtifactError(f"{weights_path}: can only save a Separator with a family")
    config = to_dict(model.config)
    metadata = {"format": FORMAT, "family": family, "config": json.dumps(config, sort_keys=True)}
    records = model_records(model)
    if records:
        try:
            metadata["records"] = json.dumps(records, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(
                f"{weights_path}: compression records are not JSON ({_brief(exc)})"
            ) from None
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    # weights are renamed first (the inner block closes first): a crash between the renames
    # leaves new weights with an old card, which load_artifact detects through the SHA-256
    with atomic_path(card_path) as tmp_card, atomic_path(weights_path) as tmp_weights:
        save_model(model, str(tmp_weights), metadata=metadata)
        full_card: dict[str, Any] = dict(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            name=weights_path.stem,
            family=family,
            config=config,
            n_params=model.n_params(),
            sample_rate=model.sample_rate,
            # the band the model separates: input above it is resampled away (separate says so)
            band_hz=[0, model.sample_rate // 2],
            n_src=model.n_src,
            source_names=list(model.source_names),
            causal=bool(model.causal),
            lookahead_samples=int(model.lookahead_samples),
            weights_file=weights_path.name,
            weights_sha256=_sha256(tmp_weights),
            weights_bytes=tmp_weights.stat().st_size,
            software=software_versions(),
        )
        if records:
            full_card["compression_records"] = records
        full_card.update({k: v for k, v in (card or {}).items() if k not in full_card})
        try:
            text = json.dumps(full_card, indent=2, sort_keys=False, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(
                f"{card_path}: card is not JSON serialisable ({_brief(exc)})"
            ) from None
        tmp_card.write_text(text + "\n")
    return weights_path


def read_card(path: str | Path) -> dict[str, Any]:
    """The JSON card of the artifact at ``path`` (stem, weights or card path)."""
    _, card_path = artifact_paths(path)
    if not card_path.is_file():
        raise ArtifactError(f"{card_path}: model card not found")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{card_path}: not a valid JSON model card ({_brief(exc)})") from None
    if not isinstance(card, dict):
        raise ArtifactError(f"{card_path}: model card must be a JSON object")
    return card


def read_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of the artifact's weights file (family, config JSON)."""
    weights_path, _ = artifact_paths(path)
    if not weights_path.is_file():
        raise ArtifactError(f"{weights_path}: weights file not found")
    try:
        with safe_open(str(weights_path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ArtifactError(
            f"{weights_path}: not a valid safetensors file ({_brief(exc)})"
        ) from None
    return dict(metadata)


def load_artifact(path: str | Path) -> Separator:
    """Rebuild the model saved at ``path`` (stem, weights or card path), in eval mode on CPU."""
    from edgesep.models.zoo_registry import FAMILIES, build_from_dict, list_configs

    weights_path, card_path = artifact_paths(path)
    metadata = read_metadata(weights_path)
    family = metadata.get("family")
    if not family or "config" not in metadata:
        raise ArtifactError(f"{weights_path}: no edgesep family/config in the weights metadata")
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            f"{weights_path}: config metadata is not JSON ({_brief(exc)})"
        ) from None
    if card_path.is_file():
        expected = read_card(card_path).get("weights_sha256")
        if expected and expected != _sha256(weights_path):
            raise ArtifactError(f"{card_path}: card does not match {weights_path.name} (SHA-256)")
    list_configs()  # imports the family modules, which registers them
    if family not in FAMILIES:
        known = ", ".join(FAMILIES.names())
        raise ArtifactError(f"{weights_path}: unknown model family {family!r}; known: {known}")
    try:
        model = build_from_dict(family, config)
    except (TypeError, ValueError, KeyError) as exc:
        raise ArtifactError(
            f"{weights_path}: config does not build a {family} ({_brief(exc)})"
        ) from None
    records: list[dict[str, Any]] = []
    if "records" in metadata:
        try:
            records = list(json.loads(metadata["records"]))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ArtifactError(
                f"{weights_path}: records metadata is not a JSON list ({_brief(exc)})"
            ) from None
    try:
        model = replay_records(model, records)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ArtifactError(
            f"{weights_path}: compression records do not replay ({_brief(exc)})"
        ) from None
    try:
        missing, unexpected = load_model(model, str(weights_path), strict=True)
    except Exception as exc:  # shape mismatches and corrupt payloads surface as many types
        raise ArtifactError(
            f"{weights_path}: weights do not fit the model ({_brief(exc)})"
        ) from None
    if missing or unexpected:
        raise ArtifactError(
            f"{weights_path}: weights do not fit the model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()
