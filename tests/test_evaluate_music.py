"""evaluate_music(): mixture and oracle-IRM rows, a perfect stub, cSDR/uSDR outputs and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import butter, sosfilt
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.data.datasets.musdb import STEMS
from edgesep.evaluate_music import evaluate_music, oracle_irm_stereo
from edgesep.metrics.music import usdr
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build

SR = 8000
BANDS = ((100, 400), (600, 1200), (1500, 2200), (2600, 3600))  # one band per stem


def _write_songs(root: Path, n: int = 2, seconds: float = 1.0) -> dict[str, tuple]:
    """``root/test/<song>/`` with band-limited noise stems (an IRM separates them well)."""
    rng = np.random.default_rng(0)
    truth = {}
    for i in range(n):
        length = int(seconds * SR) + 31 * i
        stems = np.stack(
            [
                sosfilt(
                    butter(6, band, "bandpass", fs=SR, output="sos"),
                    rng.standard_normal((2, length)),
                )
                * 0.2
                for band in BANDS
            ]
        ).astype(np.float32)
        folder = root / "test" / f"song{i}"
        folder.mkdir(parents=True)
        mix = stems.sum(axis=0)
        sf.write(folder / "mixture.wav", mix.T, SR, subtype="FLOAT")
        for name, audio in zip(STEMS, stems, strict=True):
            sf.write(folder / f"{name}.wav", audio.T, SR, subtype="FLOAT")
        truth[f"song{i}"] = (mix, stems)
    return truth


class PerfectStub(Separator):
    """Returns the true stems (with a small error on drums) of a known mixture."""

    family = "perfect-stub"

    def __init__(self, truth: dict[str, tuple]) -> None:
        super().__init__()
        self.truth = list(truth.values())
        self.sample_rate, self.n_src, self.source_names = SR, 4, STEMS
        self.causal, self.lookahead_samples, self.config = False, 0, None

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def separate(self, waveform: np.ndarray, sample_rate: int, *_: float, **__: bool) -> np.ndarray:
        for mix, stems in self.truth:
            if mix.shape == waveform.shape and np.allclose(mix, waveform):
                out = stems.copy()
                out[1] *= 0.9  # drums: 20 dB uSDR exactly
                return out
        raise AssertionError("unknown mixture")


def test_rows_summary_and_files(tmp_path: Path) -> None:
    truth = _write_songs(tmp_path / "songs")
    report = evaluate_music(
        PerfectStub(truth), tmp_path / "songs", out_dir=tmp_path / "eval", progress=False, bss=False
    )
    systems = report.summary["systems"]
    assert set(systems) == {"mixture", "oracle-irm", "model"}
    # mixture row: the challenge formula on the mixture as every stem's estimate
    want = np.mean([usdr(np.broadcast_to(m, s.shape), s) for m, s in truth.values()], axis=0)
    for k, stem in enumerate(STEMS):
        assert systems["mixture"]["usdr"][stem] == pytest.approx(want[k], abs=1e-6)
    assert systems["model"]["usdr"]["drums"] == pytest.approx(20.0, abs=1e-4)
    assert systems["model"]["usdr"]["vocals"] > 60  # exact up to float32 rounding
    assert systems["oracle-irm"]["usdr"]["mean"] > systems["mixture"]["usdr"]["mean"] + 10
    assert "csdr" not in systems["model"]
    rows = list(csv.DictReader(report.csv_path.open()))  # type: ignore[union-attr]
    assert len(rows) == 2 * 3 * 4 and rows[0].keys() == {"id", "system", "stem", "usdr", "sdr_v4"}
    saved = json.loads(report.json_path.read_text())  # type: ignore[union-attr]
    assert saved["n_tracks"] == 2 and saved["split"] == "test"


def test_oracle_irm_is_per_channel() -> None:
    rng = np.random.default_rng(1)
    stems = rng.standard_normal((4, 2, SR)).astype(np.float32)
    stems[:, 1] = 0.0  # right channel silent: its estimates stay silent
    est = oracle_irm_stereo(stems.sum(0), stems, SR)
    assert est.shape == stems.shape and np.abs(est[:, 1]).max() < 1e-6


def test_stem_names_must_match(tmp_path: Path) -> None:
    _write_songs(tmp_path / "songs", n=1)
    with pytest.raises(ValueError, match="stems vocals, drums, bass, other"):
        evaluate_music(build("bsrnn-test"), tmp_path / "songs", progress=False, bss=False)


def test_cli_dispatches_music_layouts(tmp_path: Path) -> None:
    _write_songs(tmp_path / "songs", n=1, seconds=0.5)
    from edgesep.models.artifact import save_artifact

    model = build("bsrnn-test", n_src=4, source_names=STEMS)
    save_artifact(model, tmp_path / "m", {"name": "tiny-music"})
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "m.safetensors"),
            str(tmp_path / "songs"),
            "--no-bss",
            "-o",
            str(tmp_path / "ev"),
        ],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.stdout
    assert "uSDR vocals" in result.stdout and "oracle-irm" in result.stdout
    assert (tmp_path / "ev" / "per_track.csv").is_file()


def test_csdr_row_matches_museval_on_the_model_estimate(tmp_path: Path) -> None:
    truth = _write_songs(tmp_path / "songs", n=1, seconds=1.5)
    from edgesep.metrics.music import track_sdr_v4

    report = evaluate_music(PerfectStub(truth), tmp_path / "songs", progress=False)
    mix, stems = next(iter(truth.values()))
    est = PerfectStub(truth).separate(mix, SR)
    want = track_sdr_v4(est, stems, SR)
    got = report.summary["systems"]["model"]["csdr"]
    np.testing.assert_allclose([got[s] for s in STEMS], want, rtol=1e-9)
