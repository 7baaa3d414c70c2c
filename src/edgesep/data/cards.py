"""Data cards: a JSON record beside every generated data set, saying how to make it again.

A card records the seed, the sources (which corpora, splits and speakers), counts, the total
duration in seconds, a content hash of the files written and the parameters used. It lives at
``ROOT/card.json``, the same place :mod:`edgesep.data.corpus` reads corpus cards from.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgesep.atomic import write_text
from edgesep.errors import InputError

CARD_NAME = "card.json"
_CHUNK = 1 << 20


def content_hash(paths: Iterable[Path], root: str | Path | None = None) -> str:
    """SHA-256 (hex) over the relative path and the bytes of every file, in sorted path order.

    Paths are taken relative to ``root`` (default: the deepest folder holding all of them), so a
    data set hashes the same wherever it is moved. Each entry is hashed as ``path NUL size NUL
    bytes`` so that no two different file sets can share one byte stream. Files are read in
    chunks, so large data sets need little memory.
    """
    files = [Path(p).resolve() for p in paths]
    if root is None:
        base = Path(os.path.commonpath([p.parent for p in files])) if files else Path.cwd()
    else:
        base = Path(root).resolve()
    entries = []
    for path in files:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            raise InputError(f"{path}: not inside hash root {base}") from None
        entries.append((rel, path))
    digest = hashlib.sha256()
    for rel, path in sorted(entries):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: cannot hash, no such file")
        digest.update(f"{rel}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def audio_facts(root: str | Path, sample_rate: int) -> dict[str, Any]:
    """The card fields every audio corpus has: total ``duration_seconds`` of its ``.wav`` files
    (all at ``sample_rate``) and their ``content_hash``."""
    import soundfile as sf

    files = sorted(Path(root).rglob("*.wav"))
    frames = sum(sf.info(str(f)).frames for f in files)
    return {
        "duration_seconds": round(frames / sample_rate, 2),
        "content_hash": content_hash(files, root),
    }


def _card_path(root: str | Path) -> Path:
    root = Path(root)
    return root if root.suffix == ".json" else root / CARD_NAME


def write_card(root: str | Path, card: dict[str, Any]) -> Path:
    """Write ``card`` as ``root/card.json`` (atomically) and return its path.

    Adds ``created_by: "edgesep <version>"``; the caller's dict is not modified.
    """
    from edgesep import __version__

    path = _card_path(root)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: cannot write card, no such folder")
    full = {**card, "created_by": f"edgesep {__version__}"}
    try:
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: card is not plain JSON ({exc})") from None
    write_text(path, text)
    return path


def read_card(root: str | Path) -> dict[str, Any]:
    """The card at ``root/card.json`` (or ``root`` itself if it names a .json file)."""
    path = _card_path(root)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no data card found")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: data card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise InputError(f"{path}: data card must be a JSON object, got {type(card).__name__}")
    return card
