"""The ``edgesep`` command through typer's CliRunner: models, separate, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from cli_process import run_edgesep
from edgesep.cli.main import app
from edgesep.models.artifact import save_artifact
from edgesep.models.zoo_registry import build

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("art") / "test-model"
    return save_artifact(build("convtasnet-test").eval(), path)


def _wav(path: Path, sample_rate: int, n_channels: int, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    data = 0.1 * rng.standard_normal((int(sample_rate * seconds), n_channels))
    sf.write(path, data.astype(np.float32), sample_rate)
    return path


def _mixture_set(root: Path, n_samples: int, seed: int) -> Path:
    """One 2-speaker mixture of noise in the WSJ0-2mix layout (mix/ s1/ s2/)."""
    sources = 0.1 * np.random.default_rng(seed).standard_normal((2, n_samples))
    for name, sig in (("mix", sources.sum(0)), ("s1", sources[0]), ("s2", sources[1])):
        (root / name).mkdir(parents=True)
        sf.write(root / name / "a.wav", sig.astype(np.float32), 8000)
    return root


def _invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_models_lists_configs() -> None:
    code, out, _ = _invoke("models")
    assert code == 0
    assert "convtasnet-paper" in out and "untrained" in out


def test_separate_keeps_rate_channels_length(tmp_path: Path, artifact: Path) -> None:
    wav = _wav(tmp_path / "song.wav", 16000, 2, 0.55)
    code, out, err = _invoke(
        "separate", wav, "-o", tmp_path / "out", "--model", artifact, "--threads", "1"
    )
    assert code == 0, err
    for name in ("s1", "s2"):
        meta = sf.info(str(tmp_path / "out" / "song" / f"{name}.wav"))
        assert (meta.samplerate, meta.channels, meta.frames) == (16000, 2, 8800)
    assert str(tmp_path / "out" / "song") in out


def test_separate_bad_inputs(tmp_path: Path, artifact: Path) -> None:
    good = _wav(tmp_path / "good.wav", 8000, 1, 0.3)
    missing = tmp_path / "missing.wav"
    code, _, err = _invoke("separate", missing, good, "-o", tmp_path / "out", "-m", artifact)
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and str(missing) in lines[0]
    assert "Traceback" not in err and len(lines) == 2  # that file's error + the count
    assert (tmp_path / "out" / "good" / "s1.wav").is_file()  # the others still run
    code, _, err = _invoke("separate", good, "-o", tmp_path / "out", "-m", tmp_path / "nope")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "nope" in err


def test_evaluate_writes_summary(tmp_path: Path, artifact: Path) -> None:
    _mixture_set(tmp_path / "data", 4000, seed=1)
    out = tmp_path / "eval"
    code, stdout, err = _invoke("evaluate", artifact, tmp_path / "data", "-o", out)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_files"] == 1 and set(summary["systems"]) == {
        "mixture",
        "oracle-irm",
        "oracle-ibm",
        "model",
    }
    assert (out / "per_file.csv").is_file() and "oracle-irm" in stdout
    code, _, err = _invoke("evaluate", artifact, tmp_path / "absent")
    assert code == 1 and "absent" in err and "Traceback" not in err


def test_evaluate_scores_an_exported_graph_like_its_model(tmp_path: Path, artifact: Path) -> None:
    from edgesep.evaluate import evaluate
    from edgesep.export import export_onnx
    from edgesep.models.artifact import load_artifact

    _mixture_set(tmp_path / "data", 6000, seed=2)
    graph = export_onnx(load_artifact(artifact), tmp_path / "m.onnx")
    scores = [
        evaluate(m, tmp_path / "data", references=False, progress=False).summary
        for m in (artifact, graph)
    ]
    eager, ort = (s["systems"]["model"]["si_snri"]["mean"] for s in scores)
    assert ort == pytest.approx(eager, abs=1e-3)
    assert scores[1]["model"]["name"] == "m" and scores[1]["model"]["n_params"] is None


def test_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgesep.zoo as zoo

    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.setattr(zoo, "EXAMPLES_DIR", tmp_path / "zoo" / "examples")
    code, _, err = _invoke("demo", "-o", tmp_path / "demo")
    assert code == 1 and "convtasnet-tiny-8k" in err and len(err.strip().splitlines()) == 1

    torch.manual_seed(0)
    save_artifact(build("convtasnet-test").eval(), tmp_path / "zoo" / zoo.DEFAULT_MODEL)
    code, _, err = _invoke("demo", "-o", tmp_path / "demo")
    assert code == 1 and "two_speakers_8k.wav: bundled example missing" in err

    rng = np.random.default_rng(2)
    s1, s2 = 0.1 * rng.standard_normal((2, 4000))
    (tmp_path / "zoo" / "examples").mkdir()
    for suffix, sig in (("", s1 + s2), ("_s1", s1), ("_s2", s2)):
        sf.write(tmp_path / "zoo" / "examples" / f"two_speakers_8k{suffix}.wav", sig, 8000)
    code, out, err = _invoke("demo", "-o", tmp_path / "demo", "--threads", "1")
    assert code == 0, err
    assert "SI-SNRi" in out and "real-time factor" in out and "1 CPU thread" in out
    assert (tmp_path / "demo" / "two_speakers_8k" / "s2.wav").is_file()


def test_separate_says_when_the_band_is_lost(tmp_path: Path, artifact: Path) -> None:
    wav = _wav(tmp_path / "wide.wav", 16000, 1, 0.3)
    code, _, err = _invoke("separate", wav, "-o", tmp_path / "out", "-m", artifact)
    assert code == 0, err
    assert "warning: " in err and "4000-8000 Hz band of this 16000 Hz input is left out" in err
    code, _, err = _invoke(
        "separate", _wav(tmp_path / "n.wav", 8000, 1, 0.3), "-o", tmp_path, "-m", artifact
    )
    assert code == 0 and "warning" not in err


def test_loud_float_input_warns_once_and_float_output_keeps_it(
    tmp_path: Path, artifact: Path
) -> None:
    loud = tmp_path / "loud.wav"
    t = np.arange(4000) / 8000
    sf.write(loud, (1.6 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000, subtype="FLOAT")
    out = tmp_path / "o"
    run = run_edgesep(
        "separate", loud, "-o", out, "-m", artifact, "--subtype", "FLOAT", "--threads", "1"
    )
    assert run.returncode == 0, run.stderr
    warned = [x for x in run.stderr.splitlines() if "above full scale" in x]
    assert len(warned) == 1 and warned[0].startswith("warning: "), run.stderr
    assert sf.info(str(tmp_path / "o" / "loud" / "s1.wav")).subtype == "FLOAT"
    code, _, err = _invoke("separate", loud, "-o", tmp_path, "-m", artifact, "--subtype", "MP3")
    assert code == 1 and "--subtype must be one of" in err


def test_separate_runs_an_exported_graph_like_the_model(tmp_path: Path, artifact: Path) -> None:
    from edgesep.export import export_onnx
    from edgesep.models.artifact import load_artifact

    graph = export_onnx(load_artifact(artifact), tmp_path / "m.onnx", example_seconds=0.5)
    wav = _wav(tmp_path / "talk.wav", 16000, 1, 1.3)
    code, out, err = _invoke("separate", wav, "-o", tmp_path / "ort", "-m", graph)
    assert code == 0, err
    assert "ONNX Runtime" in out
    code, _, err = _invoke("separate", wav, "-o", tmp_path / "pt", "-m", artifact)
    assert code == 0, err
    for name in ("s1", "s2"):
        a, _ = sf.read(tmp_path / "ort" / "talk" / f"{name}.wav")
        b, _ = sf.read(tmp_path / "pt" / "talk" / f"{name}.wav")
        np.testing.assert_allclose(a, b, atol=2e-4)  # 16-bit rounding apart


def test_separate_no_rescale_keeps_the_models_own_gains(tmp_path: Path, artifact: Path) -> None:
    wav = _wav(tmp_path / "x.wav", 8000, 1, 0.5)
    for flag in ("--rescale", "--no-rescale"):
        code, _, err = _invoke(
            "separate", wav, "-o", tmp_path / flag, "-m", artifact, flag, "--subtype", "FLOAT"
        )
        assert code == 0, err
    mix, _ = sf.read(wav)
    scaled = sum(sf.read(tmp_path / "--rescale" / "x" / f"s{i}.wav")[0] for i in (1, 2))
    raw = sum(sf.read(tmp_path / "--no-rescale" / "x" / f"s{i}.wav")[0] for i in (1, 2))
    # least-squares gains rebuild the mixture better than the untrained model's own output
    assert np.sum((mix - scaled) ** 2) < np.sum((mix - raw) ** 2)
