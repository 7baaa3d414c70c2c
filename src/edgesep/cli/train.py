"""``edgesep train CONFIG.yaml [key=value ...] [--resume]``."""

from __future__ import annotations

from pathlib import Path

import typer

from edgesep.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        config: Path = typer.Argument(
            ..., help="Training recipe (YAML), e.g. configs/train/*.yaml"
        ),
        overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. lr=5e-4"),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last."),
        threads: int = typer.Option(0, help="CPU threads (0: the config's value)."),
    ) -> None:
        """Train a separation model on dynamically mixed speech; checkpoints and resumes."""
        from edgesep.config import apply_overrides, from_dict, load_file
        from edgesep.train.loop import TrainConfig
        from edgesep.train.loop import train as run

        with user_errors():
            extra = [*(overrides or []), *([f"threads={threads}"] if threads else [])]
            cfg = from_dict(TrainConfig, apply_overrides(load_file(config), extra))
            best = run(cfg, resume=resume, console=console)
        console.print(f"best model: {best}.safetensors")
