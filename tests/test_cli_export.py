"""``edgesep export``: a checked ONNX file, or nothing and a one-line error."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.models.artifact import save_artifact
from edgesep.models.zoo_registry import build

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_exports_an_artifact_with_parity_and_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    art = save_artifact(build("convtasnet-test").eval(), tmp_path / "art")
    out = tmp_path / "deep" / "model.onnx"
    code, stdout, stderr = _invoke("export", art, "-o", out)
    assert code == 0, stderr
    assert "max |diff|" in stdout
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["edgesep.n_src"] == "2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"], "no staging file left"


def test_config_names_need_the_untrained_flag(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, _, stderr = _invoke("export", "convtasnet-test", "-o", out)
    assert code == 1 and "--untrained" in stderr and not out.exists()
    code, _, stderr = _invoke("export", "convtasnet-test", "--untrained", "-o", out)
    assert code == 0, stderr


def test_stream_step_graph_for_a_causal_config(tmp_path: Path) -> None:
    out = tmp_path / "step.onnx"
    code, stdout, stderr = _invoke(
        "export", "convtasnet-tiny-causal", "--untrained", "--stream", "-o", out
    )
    assert code == 0, stderr
    assert "streaming step graph" in stdout
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["edgesep.graph"] == "stream_step" and meta["edgesep.stream_delay"] == "31"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convtasnet-test", "--untrained", "--stream"], "causal"),
        (["no/such/model.safetensors"], "no artifact"),
    ],
)
def test_bad_requests_fail_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.onnx"
    code, _, stderr = _invoke("export", *args, "-o", out)
    assert code == 1 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_output_must_be_onnx(tmp_path: Path) -> None:
    code, _, stderr = _invoke("export", "convtasnet-test", "--untrained", "-o", tmp_path / "m.pt")
    assert code == 1 and ".onnx" in stderr
