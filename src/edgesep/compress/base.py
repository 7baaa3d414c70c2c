"""The compression pass contract: ``pass(model, ctx) -> PassResult(model, record, stats)``.

A pass is a frozen dataclass of its parameters, registered in :data:`PASSES` by name; calling it
runs it. It never mutates its input model: it works on a copy (:func:`clone`) and returns a new
model with a JSON *record* (what replaying it needs) and JSON *stats* (the figures it promises).
:func:`run_pass` is the one way the library runs a pass: it checks the input came back
untouched, stamps the record with the pass name and whether it must be replayed (a replayer is
registered for it, see :mod:`edgesep.compress.records`), and appends the record to the new
model's ``compression_records`` so that :func:`~edgesep.models.artifact.save_artifact` saves it.

Fine-tuning, evaluation and calibration data are injected through :class:`PassContext` as
callables, so compress never imports train (DESIGN.md, layer 5).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from edgesep.config import from_dict
from edgesep.errors import InputError
from edgesep.models.artifact import REPLAYERS, model_records, set_records
from edgesep.models.base import Separator
from edgesep.registry import Registry


class LossFn(Protocol):
    """Replaces the default task loss during fit.

    Shape: mix (B, C, T), sources (B, S, T), est (B, S, T) = model(mix)[:, :, 0] -> scalar
    """

    def __call__(self, model: Separator, mix: Tensor, sources: Tensor, est: Tensor) -> Tensor: ...


class FitFn(Protocol):
    """Trains ``model`` in place on the task data and returns it, best-validating weights
    restored. ``on_step(model, step)`` runs after every optimiser step (e.g. to re-apply masks)."""

    def __call__(
        self,
        model: Separator,
        *,
        steps: int,
        loss: LossFn | None = None,
        lr: float | None = None,
        on_step: Callable[[Separator, int], None] | None = None,
        seed: int = 0,
    ) -> Separator: ...


class EvalFn(Protocol):
    """Validation quality in dB SI-SNRi: ``{"mean": x, "<set name>": y, ...}``."""

    def __call__(self, model: Separator) -> dict[str, float]: ...


@dataclass
class PassContext:
    """What a pass may use besides the model; every field is optional."""

    seed: int = 0
    fit: FitFn | None = None  # None: passes that need fine-tuning raise or skip it (documented)
    evaluate: EvalFn | None = None
    calibration: Callable[[], Iterator[Tensor]] | None = None  # yields mixtures (B, C, T)
    teacher: Separator | None = None  # distillation teacher (e.g. the uncompressed model)
    work_dir: Path | None = None
    progress: bool = True

    def require_fit(self, who: str) -> FitFn:
        if self.fit is None:
            raise InputError(f"{who}: needs fine-tuning but the context has no `fit` callable")
        return self.fit

    def require_evaluate(self, who: str) -> EvalFn:
        if self.evaluate is None:
            raise InputError(f"{who}: needs validation but the context has no `evaluate` callable")
        return self.evaluate


@dataclass
class PassResult:
    """A NEW model (the input is never mutated), its JSON record and JSON stats."""

    model: Separator
    record: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)


class Pass(Protocol):
    """A registered pass: a frozen dataclass of parameters, called on (model, ctx)."""

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult: ...


PASSES: Registry[type[Any]] = Registry("compression pass")


def pass_name(p: Any) -> str:
    """The registry name of a pass instance or class."""
    cls = p if isinstance(p, type) else type(p)
    for name in PASSES.names():
        if PASSES.get(name) is cls:
            return name
    raise KeyError(f"{cls.__name__} is not a registered compression pass")


def make_pass(spec: dict[str, Any]) -> Any:
    """A pass from ``{"pass": name, **params}`` (a recipe entry); unknown params fail loudly."""
    if "pass" not in spec:
        raise InputError(f"pass spec {spec!r} has no 'pass' key")
    params = {k: v for k, v in spec.items() if k != "pass"}
    return from_dict(PASSES.get(str(spec["pass"])), params)


def pass_params(p: Any) -> dict[str, Any]:
    """The JSON parameters of a pass instance (its dataclass fields)."""
    out: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(p)))
    return out


def clone(model: Separator) -> Separator:
    """A deep copy a pass may change freely (records travel with it)."""
    out = copy.deepcopy(model)
    set_records(out, model_records(model))
    return out


def fingerprint(model: Separator) -> dict[str, tuple[tuple[int, ...], str, Tensor]]:
    """Shapes, dtypes and values of every parameter and buffer, to detect mutation."""
    return {
        k: (tuple(v.shape), str(v.dtype), v.detach().clone())
        for k, v in model.state_dict(keep_vars=True).items()
    }


def _same(a: dict[str, tuple[tuple[int, ...], str, Tensor]], b: Separator) -> bool:
    now = b.state_dict(keep_vars=True)
    if set(now) != set(a):
        return False
    for k, (shape, dtype, value) in a.items():
        v = now[k].detach()
        if tuple(v.shape) != shape or str(v.dtype) != dtype or not torch.equal(v, value):
            return False
    return True


def run_pass(p: Any, model: Separator, ctx: PassContext | None = None) -> PassResult:
    """Run pass ``p`` on ``model`` and check the contract; returns the stamped result.

    The record gets ``"pass"`` (its name), ``"params"`` (the dataclass fields) unless the pass
    set them, and ``"replay"`` (true when a replayer is registered for it); the result model
    carries the input's records plus this one. Stats get ``"seconds"``.
    """
    ctx = ctx or PassContext()
    name = pass_name(p)
    before = fingerprint(model)
    t0 = time.perf_counter()
    result = p(model, ctx)
    seconds = time.perf_counter() - t0
    if not _same(before, model):
        raise RuntimeError(f"pass {name!r} mutated its input model (passes must work on a copy)")
    if result.model is model:
        raise RuntimeError(f"pass {name!r} returned its input model; it must return a new one")
    record = {"pass": name, "params": pass_params(p), **result.record}
    record["pass"] = name
    record["replay"] = name in REPLAYERS
    try:
        json.dumps(record)
        json.dumps(result.stats)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"pass {name!r}: record and stats must be JSON ({exc})") from None
    # a pass that builds a new model (a fresh distillation student) starts a new history
    earlier = [] if record.get("fresh_model") else model_records(model)
    set_records(result.model, [*earlier, record])
    stats = {**result.stats, "seconds": round(seconds, 3)}
    return PassResult(result.model, record, stats)
