"""Registries of model families and their named configs, and building a model from either.

A family is a Separator subclass with a ``config_class``; a named config (``convtasnet-tiny``) is
one frozen config instance of a family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgesep.config import from_dict, to_dict
from edgesep.models.base import Separator
from edgesep.registry import Registry


@dataclass(frozen=True)
class NamedConfig:
    family: str
    config: Any


FAMILIES: Registry[type[Separator]] = Registry("model family")
MODELS: Registry[NamedConfig] = Registry("model config")


def register_config(name: str, family: str, config: Any) -> None:
    MODELS.add(name, NamedConfig(family, config))


def _ensure_loaded() -> None:
    # importing the family modules registers them
    from edgesep.models import bsrnn, convtasnet, dprnn, elastic, liteunet, sudormrf  # noqa: F401


def build(name: str, **overrides: Any) -> Separator:
    """Instantiate registered config ``name`` with field ``overrides``."""
    _ensure_loaded()
    named = MODELS.get(name)
    cfg = to_dict(named.config)
    cfg.update(overrides)
    return build_from_dict(named.family, cfg)


def build_from_dict(family: str, cfg: dict[str, Any]) -> Separator:
    _ensure_loaded()
    cls = FAMILIES.get(family)
    return cls(from_dict(cls.config_class, cfg))


def list_configs() -> list[tuple[str, NamedConfig]]:
    _ensure_loaded()
    return [(n, MODELS.get(n)) for n in MODELS.names()]
