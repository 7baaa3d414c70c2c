"""Compressed artifacts load on a core install: in a fresh interpreter with Torch-Pruning hidden,
each kind loads (through its replayer's entry point) unless its record really needs Torch-Pruning,
which then gets a one-line instruction instead of a raw ModuleNotFoundError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgesep.compress import PassContext, make_pass, run_pass
from edgesep.compress.passes.cluster import Cluster
from edgesep.compress.passes.prune_structured import StructuredPrune
from edgesep.models.artifact import save_artifact
from edgesep.models.zoo_registry import build

# hide torch_pruning (None in sys.modules makes its import fail), then load and run
LOADER = """
import sys
sys.modules["torch_pruning"] = None
import torch
from edgesep.models.artifact import load_artifact
try:
    model = load_artifact(sys.argv[1])
except ModuleNotFoundError as exc:
    print("MISSING:", exc)
    raise SystemExit(3)
y = model(torch.zeros(1, 1, 800))
loaded = sorted(m for m, mod in sys.modules.items() if m.startswith("torch_pruning") and mod)
print("LOADED", tuple(y.shape), loaded)
"""


def _edge() -> torch.nn.Module:
    torch.manual_seed(0)
    return build("convtasnet-tiny-edge", n_blocks=2, n_repeats=1, n_filters=32, hid_chan=32).eval()


def _calibration() -> PassContext:
    g = torch.Generator().manual_seed(0)
    data = [0.05 * torch.randn(2, 1, 2000, generator=g) for _ in range(2)]
    return PassContext(calibration=lambda: iter(data), progress=False)


def _artifacts(tmp: Path) -> dict[str, Path]:
    base = build("convtasnet-test").eval()
    out = {
        "cluster": save_artifact(run_pass(Cluster(bits=3, min_numel=64), base).model, tmp / "c"),
        "prune-structured": save_artifact(
            run_pass(StructuredPrune(ratio=0.5, importance="l1"), base).model, tmp / "p"
        ),
    }
    for name in ("quantize-ptq",):
        q = run_pass(make_pass({"pass": name, "method": "percentile"}), _edge(), _calibration())
        out[name] = save_artifact(q.model, tmp / name)
    return out


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.mark.parametrize("kind", ["cluster", "quantize-ptq", "prune-structured"])
def test_each_kind_loads_without_torch_pruning_unless_it_needs_it(
    artifacts: dict[str, Path], kind: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", LOADER, str(artifacts[kind])], capture_output=True, text=True
    )
    if kind == "prune-structured":  # replaying the channel surgery is Torch-Pruning's work
        assert run.returncode == 3, run.stderr[-1500:]
        assert "pip install 'edgesep[compress]'" in run.stdout
    else:
        assert run.returncode == 0, run.stderr[-1500:]
        assert "LOADED (1, 2, 1, 800) []" in run.stdout
