"""Atomic writes: a failure leaves the previous file or folder untouched and no temp behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edgesep.atomic import atomic_dir, atomic_path, write_text


def test_file_replaced_only_on_success(tmp_path: Path) -> None:
    target = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    write_text(target, "new\r\n")
    assert target.read_bytes() == b"new\r\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_folder_swap_keeps_the_old_one_until_success(tmp_path: Path) -> None:
    out = tmp_path / "set"
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(FileExistsError, match="not empty"), atomic_dir(out):
        pass
    with pytest.raises(RuntimeError), atomic_dir(out, overwrite=True) as tmp:
        (tmp / "y").write_text("2")
        raise RuntimeError("interrupted build")
    assert sorted(os.listdir(tmp_path)) == ["set"] and os.listdir(out) == ["x"]
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "y").write_text("2")
    assert sorted(os.listdir(tmp_path)) == ["set"] and os.listdir(out) == ["y"]


def test_folder_never_built_over_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"), atomic_dir(tmp_path / "f", True):
        pass
