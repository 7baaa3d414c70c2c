"""``edgesep data music``, ``edgesep data noisy`` and ``edgesep separate`` with a 4-stem model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.data.datasets.musdb import STEMS
from edgesep.models.artifact import save_artifact
from edgesep.models.zoo_registry import build

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV)
    return result.exit_code, result.stdout + result.stderr


def test_data_music_writes_songs_and_card(tmp_path: Path) -> None:
    pytest.importorskip("tinysoundfont")
    pytest.importorskip("pretty_midi")
    out = tmp_path / "songs"
    code, text = _invoke(
        "data", "music", out, "--n-train", 1, "--n-valid", 0, "--n-test", 1,
        "--seconds", 4, "--sample-rate", 8000, "--seed", 2,
    )  # fmt: skip
    assert code == 0, text
    card = json.loads((out / "card.json").read_text())
    assert card["counts"] == {"train": 1, "valid": 0, "test": 1} and card["sample_rate"] == 8000
    assert (out / "test" / "test0000" / "vocals.wav").is_file()
    assert (out / "test" / "test0000" / "midi" / "drums.mid").is_file()
    code, text = _invoke("data", "music", out, "--n-train", 1, "--n-test", 0)
    assert code != 0 and "not empty" in text  # nothing is overwritten without --overwrite


def test_separate_writes_the_four_stems_at_the_input_rate(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build("bsrnn-test", n_src=4, source_names=STEMS).eval()
    art = save_artifact(model, tmp_path / "tiny-music")
    song = tmp_path / "song.wav"
    sf.write(song, 0.1 * np.random.default_rng(0).standard_normal((11025, 2)), 22050)
    code, text = _invoke("separate", song, "-m", art, "-o", tmp_path / "out")
    assert code == 0, text
    for stem in STEMS:
        data, sr = sf.read(tmp_path / "out" / "song" / f"{stem}.wav")
        assert sr == 22050 and data.shape == (11025, 2)


def test_data_noisy_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("s1", "s2", "mix"):
        (tmp_path / "clean" / name).mkdir(parents=True)
    s = (0.1 * rng.standard_normal((2, 4000))).astype(np.float32)
    for name, x in (("s1", s[0]), ("s2", s[1]), ("mix", s.sum(0))):
        sf.write(tmp_path / "clean" / name / "a.wav", x, 8000, subtype="PCM_16")
    code, text = _invoke(
        "data", "noisy", tmp_path / "clean", tmp_path / "noisy", "--kinds", "coloured,transient"
    )
    assert code == 0, text
    assert (tmp_path / "noisy" / "mix_both" / "a.wav").is_file()
    code, text = _invoke("data", "noisy", tmp_path / "clean", tmp_path / "x", "--kinds", "rain")
    assert code != 0 and "rain" in text
