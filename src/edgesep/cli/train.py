"""``edgesep train CONFIG.yaml [key=value ...] [--resume]``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgesep.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        config: Annotated[
            Path, typer.Argument(help="Training recipe (YAML), e.g. configs/train/*.yaml")
        ],
        overrides: Annotated[
            list[str] | None, typer.Argument(help="key=value overrides, e.g. lr=0.0005")
        ] = None,
        resume: Annotated[
            bool, typer.Option("--resume", help="Continue from OUT/checkpoints/last.")
        ] = False,
        threads: Annotated[int, typer.Option(help="CPU threads (0: the config's value).")] = 0,
    ) -> None:
        """Train a separation model on dynamically mixed speech; checkpoints and resumes."""
        from edgesep.config import apply_overrides, from_dict, load_file
        from edgesep.train.loop import TrainConfig
        from edgesep.train.loop import train as run

        with user_errors():
            extra = [*(overrides or []), *([f"threads={threads}"] if threads else [])]
            cfg = from_dict(TrainConfig, apply_overrides(load_file(config), extra))
            best = run(cfg, resume=resume, console=console)
        if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 speaks for all
            return
        if best.with_suffix(".safetensors").is_file():
            console.print(f"best model: {best}.safetensors")
        else:
            console.print(
                "no best model in this run's folder: it stopped before its first validation, "
                "or (resumed from another run's checkpoint) no validation beat that run's best"
            )
