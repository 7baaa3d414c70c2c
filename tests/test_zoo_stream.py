"""The bundled streaming models: small, documented, torch-free, and equal to their torch selves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.cli.stream import DEFAULT_STREAM_MODEL
from edgesep.models.artifact import read_card
from edgesep.runtime import Model, StreamingSession
from edgesep.zoo import EXAMPLES_DIR, ZOO_DIR, load

NAME = DEFAULT_STREAM_MODEL
# the default (12 TCN blocks) and the deeper one it replaced as default (24 blocks)
BUNDLED = [NAME, "convtasnet-tiny-edge-causal-8k"]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_stream_model_is_small_and_documented(name: str) -> None:
    onnx_path = ZOO_DIR / f"{name}.onnx"
    assert onnx_path.stat().st_size < 2_000_000
    assert (ZOO_DIR / f"{name}.safetensors").stat().st_size < 2_000_000
    card = read_card(ZOO_DIR / name)
    assert card["causal"] is True and card["sample_rate"] == 8000
    for split in ("synth-test", "real-test"):
        assert {"si_snri", "si_snri_median", "sdri", "sdri_median"} <= set(card["metrics"][split])
    assert any("edgesep train" in cmd for cmd in card["reproduce"])
    assert card["streaming"]["algorithmic_latency_ms"] <= 10.0
    info = Model(name).info
    assert info.graph == "stream_step" and info.dynamic_hops
    # exported with its convs lifted to 2-D (edgesep.nn.conv_lift): ONNX Runtime's fast path
    proto = onnx.load(str(onnx_path))
    dims = {i.name: len(i.dims) for i in proto.graph.initializer}
    ranks = [dims[n.input[1]] for n in proto.graph.node if n.op_type == "Conv"]
    assert ranks.count(4) == len(ranks) - 1, "all but the overlap-add decoder's conv"
    assert (
        1000 * info.stream_delay() / info.sample_rate == card["streaming"]["algorithmic_latency_ms"]
    )


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_stream_equals_the_torch_model_on_the_example(name: str) -> None:
    torch.set_num_threads(1)
    mix, _ = sf.read(EXAMPLES_DIR / "two_speakers_8k.wav", dtype="float32")
    mix = mix[:12000]
    s = StreamingSession(name, rescale=False)
    got = np.concatenate([s.push(mix[:777]), s.push(mix[777:]), s.flush()], axis=-1)[:, s.delay :]
    padded = np.concatenate([mix, np.zeros(s.delay, np.float32)])
    with torch.no_grad():
        want = load(name)(torch.from_numpy(padded)[None, None])[0, :, 0, : len(mix)].numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_stream_command_works_out_of_the_box(tmp_path: Path) -> None:
    wav = tmp_path / "ex.wav"
    mix, sr = sf.read(EXAMPLES_DIR / "two_speakers_8k.wav", dtype="float32")
    sf.write(wav, mix[:8000], sr)  # one second keeps the test short
    res = CliRunner().invoke(
        app, ["stream", str(wav), "-o", str(tmp_path), "--no-pace"], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.stderr
    assert f"model {NAME}" in res.stdout
    for name in ("s1", "s2"):
        assert sf.info(str(tmp_path / "ex" / f"{name}.wav")).frames == 8000
