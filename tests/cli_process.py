"""Run ``python -m edgesep`` in a fresh interpreter, as a user's shell would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENV = {"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}


def run_edgesep(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgesep", *map(str, args)], capture_output=True, text=True, env=ENV
    )
