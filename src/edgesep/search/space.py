"""Search spaces in YAML: a zoo config to start from, a range or list of choices per field,
constraints across fields, objectives, hard budgets, and the proxy training that scores a trial.

A space file (configs/search/*.yaml)::

    name: convtasnet-8k
    base: convtasnet-tiny            # a named zoo config; its fields are the defaults
    params:
      bn_chan: {choices: [32, 48, 64]}
      hid_chan: {low: 64, high: 256, step: 32}
      lr: ...                        # only model-config fields may be searched
    constraints: ["hid_chan % bn_chan == 0"]
    objectives: [si_snri]            # or [si_snri, latency_ms] (multi-objective, no pruning)
    budgets: {model_mb: 2.0, compute_ms: 40, mmacs: 500}
    proxy: {recipe: configs/train/..., steps: 200, eval_every: 50, valid_max_items: 20}
    cost: {call_seconds: 1.0, hops_per_step: 1, n_runs: 20, measure_memory: false}

A constraint is an arithmetic comparison over field names (``+ - * / // % **``, comparisons,
``and``/``or``/``not``, numbers): it is parsed with :mod:`ast` and evaluated on those nodes only,
never with ``eval``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesep.config import load_file, to_dict
from edgesep.errors import InputError
from edgesep.models.zoo_registry import MODELS, build_from_dict, list_configs

OBJECTIVES = ("si_snri", "latency_ms", "bytes", "macs_per_second")
# hard budgets a space may set; a device profile adds latency_ms / model_mb / ram_mb / rtf
BUDGETS = ("compute_ms", "latency_ms", "model_mb", "ram_mb", "rtf", "mmacs")
PRE_TRAINING_BUDGETS = ("model_mb", "mmacs")  # checked before any training: reject, never train


class SpaceError(InputError):
    """A search space that cannot be searched, with the reason."""


@dataclass(frozen=True)
class Param:
    """One searched field: ``choices``, or an int/float range ``low..high`` (``step``, ``log``)."""

    name: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_int(self) -> bool:
        values = (self.low, self.high, self.step if self.step is not None else 1)
        return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


@dataclass(frozen=True)
class Proxy:
    """The short training that scores a trial: the recipe's data and optimiser, fewer steps."""

    recipe: str
    steps: int = 200
    eval_every: int = 50
    valid_max_items: int = 20
    threads: int = 1
    smoke_data: str = ""  # build the tone corpus of `edgesep data smoke` here when missing
    # one-shot mode: score each config as a subnet of this elastic supernet (a zoo name or an
    # artifact path), validated with the supernet's weights and no training
    supernet: str = ""


@dataclass(frozen=True)
class Cost:
    """How a trial's cost is measured (ONNX Runtime, one call, on this machine)."""

    call_seconds: float = 1.0  # a non-causal model: one call on this much audio
    hops_per_step: int = 1  # a causal model: one streaming step of this many hops
    threads: int = 1
    n_warmup: int = 3
    n_runs: int = 20
    measure_memory: bool = False  # peak RAM of the graph in a child process (a few s per trial)
    memory_seconds: float = 4.0


@dataclass(frozen=True)
class Space:
    name: str
    base: str
    family: str
    params: tuple[Param, ...]
    proxy: Proxy
    constraints: tuple[str, ...] = ()
    objectives: tuple[str, ...] = ("si_snri",)
    budgets: Mapping[str, float] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)
    pruner: Mapping[str, int] = field(default_factory=dict)  # MedianPruner's arguments
    seed: int = 0

    def base_config(self) -> dict[str, Any]:
        return to_dict(MODELS.get(self.base).config)

    def config(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The base config with ``values`` set (a dict of the family's config fields)."""
        return {**self.base_config(), **values}

    def violated(self, values: Mapping[str, Any]) -> list[str]:
        """The constraints ``values`` break (together with the base config's fields)."""
        names = self.config(values)
        return [c for c in self.constraints if not _evaluate(c, names)]


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _evaluate(expr: str, names: Mapping[str, Any]) -> Any:
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise SpaceError(f"constraint {expr!r}: unknown field {node.id!r}")
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else not value
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = ev(right_node)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        raise SpaceError(f"constraint {expr!r}: {type(node).__name__} is not allowed")

    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise SpaceError(f"constraint {expr!r} does not parse: {exc.msg}") from None
    try:
        return ev(tree)
    except ZeroDivisionError:
        return False


def _param(name: str, spec: Any) -> Param:
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise SpaceError(
            f"param {name}: expected {{choices: [...]}} or {{low, high}}, got {spec!r}"
        )
    unknown = set(spec) - {"choices", "low", "high", "step", "log"}
    if unknown:
        raise SpaceError(f"param {name}: unknown keys {sorted(unknown)}")
    if "choices" in spec:
        choices = tuple(tuple(c) if isinstance(c, list) else c for c in spec["choices"])
        if not choices:
            raise SpaceError(f"param {name}: empty choices")
        return Param(name, choices=choices)
    if "low" not in spec or "high" not in spec:
        raise SpaceError(f"param {name}: a range needs low and high")
    p = Param(
        name, low=spec["low"], high=spec["high"], step=spec.get("step"), log=bool(spec.get("log"))
    )
    if p.low is None or p.high is None or not p.low <= p.high:
        raise SpaceError(f"param {name}: low must be <= high")
    return p


def load_space(path: str | Path) -> Space:
    """Read and check a space file: the base config exists, every field is the family's, the
    base config itself satisfies the constraints' syntax, objectives and budgets are known."""
    data = load_file(path)
    list_configs()  # registers every family's named configs
    unknown = set(data) - {
        "name", "base", "params", "constraints", "objectives", "budgets", "proxy", "cost",
        "pruner", "seed",
    }  # fmt: skip
    if unknown:
        raise SpaceError(f"{path}: unknown keys {sorted(unknown)}")
    for key in ("base", "params", "proxy"):
        if key not in data:
            raise SpaceError(f"{path}: missing {key!r}")
    if data["base"] not in MODELS.names():
        raise SpaceError(f"{path}: unknown base config {data['base']!r}")
    family = MODELS.get(data["base"]).family
    fields = set(to_dict(MODELS.get(data["base"]).config))
    params = tuple(_param(n, s) for n, s in dict(data["params"]).items())
    bad = [p.name for p in params if p.name not in fields]
    if bad:
        raise SpaceError(f"{path}: {bad} are not fields of {family}'s config ({sorted(fields)})")
    objectives = tuple(data.get("objectives", ("si_snri",)))
    if not objectives or objectives[0] != "si_snri" or set(objectives) - set(OBJECTIVES):
        raise SpaceError(f"{path}: objectives start with si_snri and come from {OBJECTIVES}")
    budgets = {k: float(v) for k, v in dict(data.get("budgets") or {}).items()}
    if set(budgets) - set(BUDGETS):
        raise SpaceError(f"{path}: unknown budgets {sorted(set(budgets) - set(BUDGETS))}")
    try:
        proxy = Proxy(**dict(data["proxy"]))
        cost = Cost(**dict(data.get("cost") or {}))
    except TypeError as exc:
        raise SpaceError(f"{path}: {exc}") from None
    if proxy.steps < 1 or proxy.eval_every < 1:
        raise SpaceError(f"{path}: proxy steps and eval_every must be >= 1")
    space = Space(
        name=str(data.get("name", Path(path).stem)),
        base=data["base"],
        family=family,
        params=params,
        proxy=proxy,
        constraints=tuple(data.get("constraints") or ()),
        objectives=objectives,
        budgets=budgets,
        cost=cost,
        pruner=dict(data.get("pruner") or {}),
        seed=int(data.get("seed", 0)),
    )
    space.violated({})  # every constraint parses and names known fields
    build_from_dict(family, space.base_config())
    return space
