"""profile(): what one call is for causal and offline models, and the `edgesep profile` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgesep.bench.devices import check_budgets, load_device
from edgesep.bench.mcu import mcu_figures, peak_activation_values
from edgesep.bench.profile import ProfileSettings, profile
from edgesep.bench.targets import OrtSeparator, Target
from edgesep.cli.main import app
from edgesep.export import export_onnx
from edgesep.export.int8 import quantize_int8
from edgesep.models.zoo_registry import build

QUICK = ProfileSettings(
    n_warmup=0,
    n_runs=2,
    file_seconds=0.3,
    rtf_runs=1,
    measure_memory=False,
    devices=("this-machine", "stm32h7-cortex-m7"),
)


@pytest.mark.parametrize("backend", ["torch", "ort", "ort-int8"])
def test_causal_model_is_timed_per_streaming_step(tmp_path: Path, backend: str) -> None:
    model = build("convtasnet-test", causal=True, norm="cLN").eval()
    sep, artifact, int8 = model, None, backend == "ort-int8"
    if backend.startswith("ort"):
        artifact = export_onnx(model, tmp_path / "m.onnx")
        if backend == "ort-int8":  # int8 targets stream through an int8 step graph
            noise = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.05
            artifact = quantize_int8(artifact, tmp_path / "m.int8.onnx", [noise])
        sep = OrtSeparator(artifact, model)
        backend = "ort"
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
    assert lat["compute"] is not None
    mcu = row["devices"]["stm32h7-cortex-m7"]
    # computed, not scaled from the host: one step's MACs at 480 MHz x MACs per cycle
    per_cycle = 2.0 if row["dtype"] == "int8" else 1.0
    step_macs = row["macs_per_second"] * lat["call_ms"] / 1000
    assert mcu["kind"] == "projected (computed)"
    assert mcu["compute_p99_ms"] == pytest.approx(1e3 * step_macs / (0.48e9 * per_cycle))
    assert mcu["model_mb"] >= model.n_params() * (1 if row["dtype"] == "int8" else 4) / 1e6
    assert 0 < mcu["sram_state_mb"] < mcu["ram_mb"]
    # SRAM and flash cost less per byte than DRAM: the chip has its own energy estimate
    assert "energy" in mcu and "energy" not in row["devices"]["this-machine"]
    assert (row["dtype"] == "int8") == int8
    assert any(p.name.endswith(".step.int8.onnx") for p in tmp_path.iterdir()) == int8
    if backend == "ort":
        assert any(p.name.endswith(".step.onnx") for p in tmp_path.iterdir())
        assert row["bytes_measured"] and row["bytes"] == artifact.stat().st_size
    if backend == "torch":  # no file: 4 bytes a parameter, and labelled as such
        assert not row["bytes_measured"] and row["bytes"] == 4 * model.n_params()


def test_peak_activations_hand_computed(tmp_path: Path) -> None:
    """x -> Relu -> a; a -> Neg -> b; (a, b) -> Add -> c: x+a, then a+b, then a+b+c alive."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Neg", ["a"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["c"]),
    ]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 10]) for n in ("x", "c")]
    graph = helper.make_graph(nodes, "g", [io[0]], [io[1]])
    path = tmp_path / "g.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    counts = peak_activation_values(path, {"x": np.zeros((4, 10), np.float32)})
    assert counts == {"peak_values": 3 * 40, "state_values": 0}


def test_a_model_over_the_flash_never_passes() -> None:
    device = load_device("stm32h7-cortex-m7")
    acts = {"peak_values": 1000, "state_values": 0}
    small = mcu_figures(device, "int8", 1_500_000, 1_600_000, acts, 1e6, 16.0, 0.0)
    big = mcu_figures(device, "int8", 2_100_000, 1_000_000, acts, 1e6, 16.0, 0.0)  # file < params
    assert check_budgets(small, device.budgets)["model_mb"]["pass"] is True
    assert big["model_mb"] == pytest.approx(2.1)  # at least a byte per int8 weight
    assert check_budgets(big, device.budgets)["model_mb"]["pass"] is False
    with pytest.raises(ValueError, match="flash"):
        mcu_figures(load_device("rpi5-cortex-a76"), "int8", 1, 1, acts, 1.0, 1.0, 0.0)


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
