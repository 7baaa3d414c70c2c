"""The command line's error policy: user mistakes in one line, bugs with a way to the traceback."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import edgesep.zoo
from edgesep.cli.main import app
from edgesep.errors import EdgesepError, InputError, MissingFileError, UnknownNameError

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _models_raising(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    def broken() -> None:
        raise exc

    monkeypatch.setattr(edgesep.zoo, "list_entries", broken)


@pytest.mark.parametrize(
    "exc",
    [
        InputError("--block-ms must be > 0"),
        UnknownNameError("unknown model 'x'; known: a, b"),
        MissingFileError("data/x: not found"),
        PermissionError(errno.EACCES, "Permission denied", "out/s1.wav"),
        OSError(errno.ENOSPC, "No space left on device", "out/s1.wav"),
    ],
)
def test_user_errors_print_one_line(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    _models_raising(monkeypatch, exc)
    result = CliRunner().invoke(app, ["models"], env=ENV)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "internal" not in line
    assert "'x'" in line or "block-ms" in line or "out/s1.wav" in line or "data/x" in line


def test_a_bug_names_itself_and_how_to_see_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    _models_raising(monkeypatch, ValueError("operands could not be broadcast"))
    result = CliRunner().invoke(app, ["models"], env=ENV)
    assert result.exit_code == 1
    first, hint = result.stderr.strip().splitlines()
    assert first == "error: internal error: ValueError: operands could not be broadcast"
    assert "--debug" in hint and "EDGESEP_DEBUG=1" in hint


@pytest.mark.parametrize(
    ("args", "env"), [(["--debug", "models"], {}), (["models"], {"EDGESEP_DEBUG": "1"})]
)
def test_debug_re_raises_with_the_traceback(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]
) -> None:
    monkeypatch.delenv("EDGESEP_DEBUG", raising=False)
    _models_raising(monkeypatch, TypeError("bad operand"))
    result = CliRunner().invoke(app, args, env={**ENV, **env})
    assert isinstance(result.exception, TypeError)


def test_project_errors_are_still_the_builtins_callers_expect() -> None:
    assert issubclass(InputError, ValueError) and issubclass(UnknownNameError, KeyError)
    assert issubclass(MissingFileError, FileNotFoundError)
    assert all(issubclass(e, EdgesepError) for e in (InputError, UnknownNameError))
    assert str(UnknownNameError("unknown model 'x'")) == "unknown model 'x'"


def test_the_console_script_reports_a_user_error_in_one_line(tmp_path: Path) -> None:
    """End to end through ``main()``, in a fresh interpreter: a recipe that is not a mapping."""
    bad = tmp_path / "recipe.yaml"
    bad.write_text("- a list, not a mapping\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edgesep", "train", str(bad)],
        capture_output=True,
        text=True,
        env={"PATH": "", "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: expected a mapping at the top level"
    ]


def test_debug_lasts_one_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESEP_DEBUG", raising=False)
    _models_raising(monkeypatch, TypeError("bad operand"))
    CliRunner().invoke(app, ["--debug", "models"], env=ENV)
    result = CliRunner().invoke(app, ["models"], env=ENV)
    assert result.exit_code == 1 and "internal error: TypeError" in result.stderr
