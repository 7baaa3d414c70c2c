"""``edgesep models``: the zoo as a table (bundled pretrained models, then untrained configs)."""

from __future__ import annotations

from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from edgesep.cli.common import console, user_errors


def _size(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "-"
    return f"{n_bytes / 1e6:.2f} MB" if n_bytes >= 100_000 else f"{n_bytes / 1e3:.1f} kB"


def _count(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _status(entry: dict[str, Any]) -> str:
    """'untrained', or the card's SI-SNRi (flat, or of the first split that reports one)."""
    if not entry["trained"]:
        return "untrained"
    metrics = entry.get("metrics") or {}
    # a card may keep metrics flat ({"si_snri": ..}) or per split ({"test": {"si_snri": ..}})
    scopes = [("", metrics)] + [(f" ({k})", v) for k, v in metrics.items() if isinstance(v, dict)]
    for suffix, scope in scopes:
        value = scope.get("si_snri")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"SI-SNRi {value:.1f} dB{suffix}"
        music = scope.get("usdr")  # music cards: {"usdr": {"vocals": .., "mean": ..}}
        if isinstance(music, dict) and isinstance(music.get("mean"), int | float):
            return f"uSDR {music['mean']:.1f} dB{suffix}"
    return "pretrained"


def _macs(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.2f} G" if n >= 1e9 else f"{n / 1e6:.1f} M"


def macs_of_entry(entry: dict[str, Any]) -> int | None:
    """MACs per second of audio, counted on the meta device (no weights, no compute)."""
    import torch

    from edgesep.bench.macs import macs_per_second
    from edgesep.models.zoo_registry import build_from_dict

    if not entry.get("family") or not isinstance(entry.get("config"), dict):
        return None
    with torch.device("meta"):
        model = build_from_dict(entry["family"], entry["config"])
    return macs_per_second(model)


def models() -> None:
    """List bundled pretrained models and registered (untrained) configs."""
    from edgesep.zoo import DEFAULT_MODEL, list_entries

    with user_errors():
        entries = list_entries()
        macs = [macs_of_entry(e) for e in entries]
    table = Table(title="edgesep model zoo", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("family", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("MACs/s", justify="right", no_wrap=True)
    table.add_column("rate", justify="right", no_wrap=True)
    table.add_column("sources")
    table.add_column("causal", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("status", min_width=10)  # SI-SNRi from the card
    for e, n_macs in zip(entries, macs, strict=True):
        name = e["name"] + (" *" if e["name"] == DEFAULT_MODEL else "")
        table.add_row(
            name,
            e.get("family") or "-",
            _count(e["n_params"]),
            _macs(n_macs),
            f"{e['sample_rate'] / 1000:g} kHz" if e["sample_rate"] else "-",
            ",".join(e["source_names"] or []),
            "yes" if e["causal"] else "no",
            _size(e["size_bytes"]),
            _status(e),
        )
    # piped output has no terminal width to fit; rich would otherwise truncate to 80 columns
    if console.is_terminal:
        console.print(table)
    else:
        Console(width=160).print(table)
    if DEFAULT_MODEL in (e["name"] for e in entries):
        console.print("* the default model")
    if not any(e["kind"] == "bundled" for e in entries):
        console.print("no pretrained model installed; configs need training (edgesep train)")


def register(app: typer.Typer) -> None:
    app.command("models")(models)
