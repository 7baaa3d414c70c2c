"""What a benchmark needs before it starts: fail at once, naming the missing paths and the fix."""

from __future__ import annotations

import sys
from pathlib import Path

MAKE_DATA = "build them with `make data` (scripts/make_speech_data.sh; needs apt)"


def require(paths: list[str | Path], how: str = MAKE_DATA) -> None:
    """Exit with one line per missing path, and ``how`` to make them, before any work."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        sys.exit(f"{sys.argv[0]}: missing {', '.join(missing)}; {how}")
