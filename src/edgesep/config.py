"""Frozen dataclasses to and from plain dicts, YAML/JSON files and "a.b=c" overrides.

Configs are plain frozen dataclasses (nested ones allowed). ``from_dict`` rejects unknown keys so a
misspelt option fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from edgesep.errors import InputError, MissingFileError

C = TypeVar("C")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-serialisable dict of a (nested) dataclass."""
    out = dataclasses.asdict(cfg)
    return json.loads(json.dumps(out))  # tuples -> lists, so the dict round-trips through JSON


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value, strict=True))
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        for arg in typing.get_args(tp):
            if arg is not type(None):
                return _coerce(arg, value)
    if tp in (int, float, str, bool):
        return _scalar(tp, value)
    return value


def _scalar(tp: type, value: Any) -> Any:
    """Check a scalar's type; accept ints for floats and numeric strings for numbers.

    YAML 1.1 reads ``5e-4`` (no dot) as a string, so ``lr=5e-4`` would otherwise slip through.
    """
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp in (int, float) and isinstance(value, str):
        try:
            return tp(float(value)) if tp is float else int(value)
        except ValueError:
            pass
    elif tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise InputError(f"expected {tp.__name__}, got {value!r}")


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys raise ``InputError``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise InputError(
            f"unknown option(s) for {cls.__name__}: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in data.items():
        try:
            kwargs[key] = _coerce(hints[key], value)
        except ValueError as exc:
            raise InputError(f"option {cls.__name__}.{key}: {exc}") from None
    return cls(**kwargs)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to a nested dict (values parsed as YAML scalars)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping, with a clear error naming the file."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML/JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping at the top level")
    return data


def replace(cfg: C, **changes: Any) -> C:
    return dataclasses.replace(cfg, **changes)  # type: ignore[type-var]
