"""`edgesep separate` never loses or clobbers a file: shared stems, inputs, clipping, full disks,
interruptions, and soundfile-style (T, C) arrays in the API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from cli_process import run_edgesep
from edgesep.audio import AtomicWriter, AudioError
from edgesep.cli.main import app
from edgesep.models.artifact import save_artifact
from edgesep.models.zoo_registry import build

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_artifact(build("convtasnet-test").eval(), tmp_path_factory.mktemp("a") / "m")


def _wav(path: Path, seconds: float = 0.3, gain: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = gain * np.random.default_rng(0).standard_normal(int(8000 * seconds))
    sf.write(path, data.astype(np.float32), 8000, subtype="FLOAT")
    return path


def _invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    return result.exit_code, result.stderr


def test_two_inputs_with_one_stem_are_refused_before_any_work(
    tmp_path: Path, artifact: Path
) -> None:
    a, b = _wav(tmp_path / "a" / "talk.wav"), _wav(tmp_path / "b" / "talk.wav")
    code, err = _invoke("separate", a, b, "-o", tmp_path / "out", "-m", artifact)
    assert code == 1 and str(a) in err and str(b) in err and "OUT/talk/" in err
    assert not (tmp_path / "out").exists()
    code, _ = _invoke("separate", a, a, "-o", tmp_path / "out", "-m", artifact)  # same file twice
    assert code == 0


def test_an_input_is_never_written_over(tmp_path: Path, artifact: Path) -> None:
    inp = _wav(tmp_path / "s1" / "s1.wav")
    before = inp.read_bytes()
    code, err = _invoke("separate", inp, "-o", tmp_path, "-m", artifact)
    assert code == 1 and "written over this input" in err
    assert inp.read_bytes() == before


def test_clipped_samples_are_reported(tmp_path: Path, artifact: Path) -> None:
    loud = _wav(tmp_path / "loud.wav", gain=3.0)
    run = run_edgesep("separate", loud, "-o", tmp_path / "o", "-m", artifact, "--threads", "1")
    assert run.returncode == 0, run.stderr
    clipped = [x for x in run.stderr.splitlines() if "clipped at full scale" in x]
    assert clipped and all("--subtype FLOAT" in x for x in clipped), run.stderr


def test_a_full_disk_names_the_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "new" / "deeper" / "s1.wav"

    def no_space(self: sf.SoundFile, data: np.ndarray) -> None:
        raise sf.LibsndfileError(2, "System error.")  # what libsndfile says on ENOSPC

    monkeypatch.setattr(sf.SoundFile, "write", no_space)
    monkeypatch.setattr("shutil.disk_usage", lambda path: type("Usage", (), {"free": 0})())
    no_room = r"s1\.wav: cannot write \(no space left on device\)"
    with pytest.raises(AudioError, match=no_room), AtomicWriter(out, 8000, 1) as writer:
        writer.write(np.zeros(100, np.float32))
    assert not (tmp_path / "new").exists()  # temp file and the folders it made are gone


def test_sigterm_leaves_no_temp_files(tmp_path: Path, artifact: Path) -> None:
    long = _wav(tmp_path / "long.wav", seconds=1200.0, gain=0.05)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgesep",
            "separate",
            str(long),
            "-o",
            str(out),
            "-m",
            str(artifact),
            "--threads",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "PATH": "/usr/bin:/bin"},
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("long/.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(out.glob("long/.*.tmp")), "the separation never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "no partial output" in err
    assert not out.exists()


def test_a_transposed_array_is_refused_with_the_expected_shape() -> None:
    model = build("convtasnet-test").eval()
    with pytest.raises(ValueError, match=r"\(3000, 2\).*\(C, T\).*x\.T"):
        model.separate(np.zeros((3000, 2), np.float32), 8000)
    with pytest.raises(ValueError, match="channels first"):
        model.separate(np.zeros((16, 4000), np.float32), 8000)  # 16 channels: not audio
    assert model.separate(np.zeros((2, 3000), np.float32), 8000).shape == (2, 2, 3000)


def test_stream_never_writes_over_its_input(tmp_path: Path) -> None:
    from edgesep.export import export_step_onnx

    step = export_step_onnx(
        build("convtasnet-test", causal=True, norm="cLN").eval(), tmp_path / "step.onnx", 1
    )
    inp = _wav(tmp_path / "s2" / "s2.wav")
    before = inp.read_bytes()
    code, err = _invoke("stream", inp, "-m", step, "--no-pace", "-o", tmp_path)
    assert code == 1 and "written over this input" in err
    assert inp.read_bytes() == before
