"""QDQ export of fake-quantized models: the graph holds Q/DQ pairs and int8 weights, ONNX Runtime
runs every conv as QLinearConv, and its output matches torch's fake-quant model."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgesep.compress import PassContext, make_pass, run_pass
from edgesep.export.qdq import constants, export_qdq, int8_report
from edgesep.metrics.sisnr import si_snr
from edgesep.models.base import Separator
from test_quant_passes import noise_batches, small_edge


def _quantized(**params: object) -> Separator:
    ctx = PassContext(calibration=noise_batches(4), progress=False)
    return run_pass(make_pass({"pass": "quantize-ptq", **params}), small_edge(), ctx).model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Separator, Path]:
    # 7-bit weights in the int8 container: ORT's u8s8 AVX2 kernels would saturate 8-bit ones
    model = _quantized(weight_bits=7)
    return model, export_qdq(model, tmp_path_factory.mktemp("qdq") / "q.onnx")


def test_graph_holds_qdq_pairs_and_int8_weights(exported: tuple[Separator, Path]) -> None:
    _, path = exported
    graph = onnx.load(str(path)).graph
    ops = collections.Counter(n.op_type for n in graph.node)
    n_convs = ops["Conv"]
    assert n_convs > 0 and ops["QuantizeLinear"] >= n_convs and ops["DequantizeLinear"] > n_convs
    types = {i.name: i.data_type for i in graph.initializer}
    conv_weights = [
        n.input[1] for n in graph.node if n.op_type == "Conv"
    ]  # each conv weight is a DequantizeLinear of an int8 initializer
    producer = {o: n for n in graph.node for o in n.output}
    for w in conv_weights:
        dq = producer[w]
        assert dq.op_type == "DequantizeLinear" and types[dq.input[0]] == onnx.TensorProto.INT8
    used = {i for n in graph.node for i in n.input}
    assert all(i.name in used for i in graph.initializer)  # no float weights left behind
    assert all(n.output[0] in used for n in graph.node if n.op_type == "Constant")


def test_ort_runs_every_conv_in_int8(exported: tuple[Separator, Path]) -> None:
    _, path = exported
    report = int8_report(path, seconds=0.5)
    n_convs = sum(1 for n in onnx.load(str(path)).graph.node if n.op_type == "Conv")
    assert report["int8_ops"].get("QLinearConv") == n_convs
    assert "Conv" not in report["float_ops"]
    assert report["int8_mac_share"] > 0.95 and report["macs_int8"] > 0


def test_ort_int8_output_matches_fake_quant(exported: tuple[Separator, Path]) -> None:
    model, path = exported
    x = 0.05 * torch.randn(2, 1, 4003, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = model(x)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(sess.run(None, {"mix": x.numpy()})[0])
    assert got.shape == want.shape
    assert float(si_snr(got.flatten(0, 2), want.flatten(0, 2)).mean()) > 25.0


def test_weights_are_stored_in_int8(tmp_path: Path, exported: tuple[Separator, Path]) -> None:
    from edgesep.export.onnx import export_onnx

    model, path = exported
    n_weights = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight.original"))
    inits = onnx.load(str(path)).graph.initializer
    int8_bytes = sum(len(i.raw_data) for i in inits if i.data_type == onnx.TensorProto.INT8)
    assert int8_bytes == n_weights  # one byte per weight
    fp32 = export_onnx(small_edge().for_export(), tmp_path / "f.onnx")
    assert path.stat().st_size < 0.8 * fp32.stat().st_size


def test_export_needs_at_most_8_bits() -> None:
    model = _quantized(act_bits=10)
    with pytest.raises(ValueError, match="at most 8 bits"):
        export_qdq(model, Path("unused.onnx"))
    assert not Path("unused.onnx").exists()


def test_bias_is_int32_at_input_times_weight_scale(exported: tuple[Separator, Path]) -> None:
    _, path = exported
    graph = onnx.load(str(path)).graph
    inits = constants(graph)  # initializers and Constant nodes
    producer = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv" and len(n.input) == 3]
    assert convs
    for conv in convs:
        bias, x, w = (producer[conv.input[i]] for i in (2, 0, 1))
        assert bias.op_type == "DequantizeLinear" and inits[bias.input[0]].dtype == np.int32
        s_x, s_w = inits[x.input[1]], inits[w.input[1]]
        np.testing.assert_allclose(inits[bias.input[1]], s_x * s_w, rtol=1e-6)


def test_cli_exports_a_quantized_artifact_as_qdq(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgesep.cli.main import app
    from edgesep.models.artifact import save_artifact

    art = save_artifact(_quantized(weight_bits=7), tmp_path / "q")
    out = tmp_path / "q.onnx"
    result = CliRunner().invoke(app, ["export", str(art), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "int8 QDQ graph" in result.output and "SNR" in result.output
    ops = collections.Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
