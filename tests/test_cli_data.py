"""``edgesep data``: corpus generation and mixture building through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.data.corpus import load_corpus

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    return result.exit_code, result.stdout + result.stderr


def test_synth_speech_then_mix(tmp_path: Path) -> None:
    corpus, mixes = tmp_path / "corpus", tmp_path / "mixes"
    code, out = _run(
        "data",
        "synth-speech",
        corpus,
        "--n-train",
        "2",
        "--n-valid",
        "0",
        "--n-test",
        "4",
        "--seed",
        "3",
    )
    assert code == 0, out
    card = json.loads((corpus / "card.json").read_text())
    assert card["counts"] == {"train": 2, "valid": 0, "test": 4} and card["seed"] == 3
    assert all(u.sample_rate == 8000 for u in load_corpus(corpus, "test"))

    code, out = _run("data", "mix", corpus, mixes, "--split", "test", "--n", "3", "--seed", "1")
    assert code == 0, out
    names = sorted(p.name for p in (mixes / "mix").iterdir())
    assert len(names) == 3 and names == sorted(p.name for p in (mixes / "s2").iterdir())
    assert sf.info(str(mixes / "mix" / names[0])).samplerate == 8000
    # a second build into the same folder is refused rather than overwriting it
    code, out = _run("data", "mix", corpus, mixes, "--n", "3")
    assert code == 1 and "not empty" in out and "--overwrite" in out


def test_real_speech_without_recordings_says_how_to_install(tmp_path: Path) -> None:
    code, out = _run(
        "data",
        "real-speech",
        tmp_path / "real",
        "--asterisk-root",
        tmp_path / "none",
        "--klettres-root",
        tmp_path / "none",
    )
    assert code == 1
    assert "apt-get install" in out and "Traceback" not in out
    assert not (tmp_path / "real").exists()


def test_mix_rejects_unknown_mode(tmp_path: Path) -> None:
    code, out = _run("data", "mix", tmp_path, tmp_path / "m", "--mode", "median")
    assert code != 0 and "min or max" in out
