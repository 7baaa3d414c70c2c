"""Shared console output for the commands: one-line red errors and exit code 1.

The user's mistakes (:class:`edgesep.errors.EdgesepError`, and files the system cannot open or
write) print their message only. Anything else is a bug in edgesep: it prints a one-line summary
and how to see the traceback, ``edgesep --debug ...`` or ``EDGESEP_DEBUG=1``, which re-raise it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from edgesep.errors import EdgesepError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

DEBUG_ENV = "EDGESEP_DEBUG"
# files the system refused: the message names the file, and the fix is the user's
_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
_FILE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG}


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's to fix (printed in one line) rather than a bug."""
    if isinstance(exc, (EdgesepError, *_FILE_ERRORS)):
        return True
    return isinstance(exc, OSError) and exc.errno in _FILE_ERRNOS


_DEBUG = {"flag": False}  # `edgesep --debug`, set by each invocation's root callback


def set_debug(on: bool) -> None:
    _DEBUG["flag"] = on


def debug_enabled() -> bool:
    return _DEBUG["flag"] or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def report(exc: Exception) -> None:
    """Print ``exc`` as the commands do: one line, plus the traceback hint for a bug."""
    if is_user_error(exc):
        error(one_line(exc))
        return
    error(f"internal error: {type(exc).__name__}: {one_line(exc)}")
    err_console.print(
        Text(
            f"this is a bug in edgesep; `edgesep --debug ...` or {DEBUG_ENV}=1 shows the traceback",
            style="dim",
        )
    )


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
    """Print any exception as :func:`report` does and exit with status 1 (with ``--debug``, a
    bug re-raises with its traceback)."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if debug_enabled():
            raise
        report(exc)
        raise typer.Exit(code=1) from None
