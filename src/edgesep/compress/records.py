"""Replaying compression records: rebuild a compressed model's structure on a fresh model.

Passes that change a model's structure (structured pruning, palettisation, fake-quant
insertion...) register a replayer ``replay(model, record) -> model`` under their pass name with
:func:`register_replayer`. The table lives in :mod:`edgesep.models.artifact` (``REPLAYERS``), so
:func:`~edgesep.models.artifact.load_artifact` can build a model from its config, replay the
records in order and only then load the weights; importing :mod:`edgesep.compress` registers
every replayer (``load_artifact`` imports it by name when a record needs one).

Replaying a pass's record on a fresh model must rebuild exactly the shapes the pass produced
(:func:`shapes` compares them; the pass tests check it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgesep.models.artifact import REPLAYERS, Replayer, model_records, replay_records
from edgesep.models.base import Separator


def register_replayer(name: str) -> Callable[[Replayer], Replayer]:
    """Decorator: ``fn(model, record) -> model`` replays records of pass ``name``."""

    def decorate(fn: Replayer) -> Replayer:
        return REPLAYERS.add(name, fn)

    return decorate


def replay(model: Separator, records: list[dict[str, Any]]) -> Separator:
    """Replay ``records`` (in order) on ``model``, which is changed in place and returned."""
    return replay_records(model, records)


def records_of(model: Separator) -> list[dict[str, Any]]:
    """The compression records ``model`` carries."""
    return model_records(model)


def shapes(model: Separator) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter and buffer (what a replay must reproduce)."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
