"""Shared console output for the commands: one-line red errors, exit code 1, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from edgesep.audio import AudioError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

# Bad input of every kind the library reports: each message already names the file or option.
USER_ERRORS: tuple[type[BaseException], ...] = (AudioError, ValueError, KeyError, OSError)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (KeyError's without its repr quotes)."""
    raw = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    text = " ".join(str(raw).split())
    return text or type(exc).__name__


def error(message: str) -> None:
    """Print ``error: message`` in red on stderr, never wrapped or parsed as markup."""
    err_console.print(Text(f"error: {message}", style="bold red"))


def warn(message: str) -> None:
    """Print ``warning: message`` in yellow on stderr, never wrapped or parsed as markup."""
    err_console.print(Text(f"warning: {message}", style="bold yellow"))


def fail(message: str) -> NoReturn:
    error(message)
    raise typer.Exit(code=1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's bad-input exceptions into a one-line error and exit code 1."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(one_line(exc))
