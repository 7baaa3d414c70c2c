"""profile(): what one call is for causal and offline models, and the `edgesep profile` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgesep.bench.profile import ProfileSettings, profile
from edgesep.bench.targets import OrtSeparator, Target
from edgesep.cli.main import app
from edgesep.export import export_onnx
from edgesep.models.zoo_registry import build

QUICK = ProfileSettings(
    n_warmup=0,
    n_runs=2,
    file_seconds=0.3,
    rtf_runs=1,
    measure_memory=False,
    devices=("this-machine", "stm32h7-cortex-m7"),
)


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_causal_model_is_timed_per_streaming_step(tmp_path: Path, backend: str) -> None:
    model = build("convtasnet-test", causal=True, norm="cLN").eval()
    sep, artifact = model, None
    if backend == "ort":
        artifact = export_onnx(model, tmp_path / "m.onnx")
        sep = OrtSeparator(artifact, model)
    target = Target("m/x", "convtasnet-test", "x", backend, artifact, model, sep, False)
    row = profile(target, QUICK, tmp_path)
    lat = row["latency"]
    assert lat["call_samples"] == model.stream_hop
    assert lat["algorithmic_ms"] == pytest.approx(1000 * model.stream_delay / model.sample_rate)
    assert lat["total_ms"] == pytest.approx(
        lat["algorithmic_ms"] + lat["compute"]["p99_ms"], abs=1e-3
    )
    # a stream keeps up only if a step's compute fits in the step: that is its RTF budget figure
    assert lat["stream_rtf"] == pytest.approx(lat["compute"]["p99_ms"] / lat["call_ms"], rel=1e-3)
    assert row["devices"]["this-machine"]["rtf"] == pytest.approx(lat["stream_rtf"], rel=1e-6)
    mcu = row["devices"]["stm32h7-cortex-m7"]
    assert mcu["kind"] == "projected" and mcu["compute_p99_ms"] > lat["compute"]["p99_ms"]
    if backend == "ort":
        assert any(p.name.endswith(".step.onnx") for p in tmp_path.iterdir())
        assert row["bytes_measured"] and row["bytes"] == artifact.stat().st_size
    else:  # no file: 4 bytes a parameter, and labelled as such
        assert not row["bytes_measured"] and row["bytes"] == 4 * model.n_params()


def test_profile_command_json() -> None:
    result = CliRunner().invoke(
        app, ["profile", "convtasnet-test", "--no-memory", "--json", "--device", "this-machine"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    model = build("convtasnet-test")
    assert row["params"] == model.n_params() and row["variant"] == "torch-fp32"
    assert list(row["devices"]) == ["this-machine"] and row["trained"] is False


def test_profile_command_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["profile", "no-such-model", "--no-memory"])
    assert result.exit_code == 1 and "no-such-model" in result.output
    result = runner.invoke(app, ["profile", "convtasnet-test", "--variant", "onnx-int8"])
    assert result.exit_code == 1 and "--calibration" in result.output
