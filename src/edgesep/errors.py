"""The project's error types: what the user can fix, as opposed to a bug in edgesep.

The command line prints an :class:`EdgesepError` as one line (its message names the file or the
option) and exits with status 1. Any other exception is a bug: it prints a one-line summary and
how to see the traceback (``edgesep --debug ...`` or ``EDGESEP_DEBUG=1``). Each type also derives
from the builtin a caller would expect (``ValueError``, ``KeyError``, ``FileNotFoundError``), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class EdgesepError(Exception):
    """Bad input, a bad option, or missing data: the user's to fix; the message says how."""


class InputError(EdgesepError, ValueError):
    """A bad value: an option, a config entry, a file's contents."""


class UnknownNameError(EdgesepError, KeyError):
    """A name (model, pass, device profile, dataset) that is not registered."""

    def __str__(self) -> str:  # KeyError's str() would quote the message
        return str(self.args[0]) if self.args else ""


class MissingFileError(EdgesepError, FileNotFoundError):
    """A file or folder the command needs is not there (a checkpoint, a config, data)."""
