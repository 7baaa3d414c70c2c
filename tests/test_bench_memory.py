"""Peak RSS measured in child processes: the figures add up, grow with the input, belong to the
child (not to the big parent that started it), and failures surface the child's own error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesep.bench import memprobe
from edgesep.bench.memory import peak_rss
from edgesep.export.onnx import export_onnx
from edgesep.export.streaming import export_step_onnx
from edgesep.models.zoo_registry import build


@pytest.fixture(scope="module")
def offline_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(build("convtasnet-test"), tmp_path_factory.mktemp("mem") / "off.onnx")


def test_torch_peak_is_baseline_plus_the_model() -> None:
    res = peak_rss("torch", "convtasnet-test", seconds=2.0)
    assert res["peak_rss_mb"] > res["baseline_rss_mb"] > 0
    assert res["model_rss_mb"] == pytest.approx(res["peak_rss_mb"] - res["baseline_rss_mb"])
    assert (res["backend"], res["model"], res["seconds"], res["threads"]) == (
        "torch",
        "convtasnet-test",
        2.0,
        1,
    )
    assert res["wall_s"] > 0


def test_ort_memory_grows_with_the_input_length(offline_onnx: Path) -> None:
    # the offline graph holds (channels x frames) activations for the whole input at once
    short = peak_rss("ort", offline_onnx, seconds=2.0)
    long = peak_rss("ort", offline_onnx, seconds=120.0)
    assert long["model_rss_mb"] > short["model_rss_mb"] + 10
    assert long["baseline_rss_mb"] == pytest.approx(short["baseline_rss_mb"], abs=5)


def test_the_figure_is_the_childs_not_the_parents(offline_onnx: Path) -> None:
    # a child's ru_maxrss would include these 256 MiB (see memprobe); the probe's VmHWM must not
    ballast = np.ones(32 * 2**20)  # 256 MiB, every page touched
    res = peak_rss("ort", offline_onnx, seconds=1.0)
    assert res["peak_rss_mb"] < 200 < ballast.nbytes / 2**20


def test_ort_child_never_imports_torch(offline_onnx: Path) -> None:
    script = (
        "import runpy, sys; "
        f"ns = runpy.run_path({str(Path(memprobe.__file__))!r}); "
        f"assert ns['main'](['ort', {str(offline_onnx)!r}, '--seconds', '0.5']) == 0; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", script], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_step_graph_runs_as_a_stream(tmp_path: Path) -> None:
    model = build("convtasnet-test", causal=True, norm="cLN")
    path = export_step_onnx(model, tmp_path / "step.onnx", hops_per_step=4)
    res = peak_rss("ort", path, seconds=0.5)
    assert res["peak_rss_mb"] > res["baseline_rss_mb"] > 0


def test_failures_name_the_childs_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"missing\.onnx.*(?i:no.?such.?file)"):
        peak_rss("ort", tmp_path / "missing.onnx", seconds=1.0)
    with pytest.raises(RuntimeError, match=r"ArtifactError: .*nowhere\.safetensors"):
        peak_rss("torch", tmp_path / "nowhere.safetensors", seconds=1.0)
    with pytest.raises(RuntimeError, match="no result within"):
        peak_rss("ort", tmp_path / "missing.onnx", seconds=1.0, timeout_s=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "tflite"}, "unknown backend 'tflite'"),
        ({"seconds": 0.0}, "seconds"),
        ({"threads": 0}, "threads"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"backend": "ort", "model": "x.onnx", **kwargs}
    with pytest.raises(ValueError, match=match):
        peak_rss(**args)  # type: ignore[arg-type]
