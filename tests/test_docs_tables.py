"""Generated doc tables match their committed results and say whose weights they measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_scripts import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "docs_tables.py"


def _module() -> ModuleType:
    return load_benchmark("docs_tables")


def test_docs_match_their_results() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_table_of_earlier_weights_says_so(tmp_path: Path) -> None:
    docs = _module()
    current = json.loads((docs.ZOO / "convtasnet-tiny-8k.json").read_text())["weights_sha256"]
    assert docs.measured_on({"model_weights_sha256": current}).startswith("Measured on the bundled")
    stale = docs.measured_on({"model_weights_sha256": "0" * 64})
    assert "earlier" in stale and current[:8] in stale and "00000000" in stale


def test_splice_replaces_only_between_its_markers() -> None:
    docs = _module()
    text = "a\n<!-- t: begin -->\nold\n<!-- t: end -->\nb <!-- u: begin -->x<!-- u: end -->"
    out = docs.splice(text, "t", "new")
    assert out == "a\n<!-- t: begin -->\nnew\n<!-- t: end -->\nb <!-- u: begin -->x<!-- u: end -->"
    with pytest.raises(SystemExit, match="missing"):
        docs.splice(text, "v", "x")
