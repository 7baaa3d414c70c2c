"""The ``edgesep`` command: one module per command, thin adapters over the library.

Each command module exposes ``register(app)``; :data:`COMMANDS` lists them in help order.
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, TextIO

import typer

from edgesep import __version__
from edgesep.audio import AudioWarning
from edgesep.cli import (
    bench,
    compress,
    data,
    demo,
    evaluate,
    export,
    models,
    quant,
    search,
    separate,
    stream,
    train,
)
from edgesep.cli.common import DEBUG_ENV, debug_enabled, report, set_debug, warn

app = typer.Typer(
    name="edgesep",
    help="Audio source separation for edge devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS = (
    demo,
    separate,
    models,
    evaluate,
    train,
    export,
    bench,
    data,
    stream,
    compress,
    quant,
    search,
)
for _module in COMMANDS:
    _module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgesep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help=f"Show the traceback of an internal error ({DEBUG_ENV}=1)."),
    ] = False,
) -> None:
    """Audio source separation for edge devices."""
    set_debug(debug)  # every invocation sets it, so one --debug never outlives its command


def _show_audio_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    if issubclass(category, AudioWarning):
        warn(str(message))
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main() -> None:
    """Console-script entry point; an error a command let through still gets :func:`report`."""
    warnings.showwarning = _show_audio_warning  # audio warnings as one line, like errors
    try:
        app()
    except Exception as exc:
        if debug_enabled():
            raise
        report(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
