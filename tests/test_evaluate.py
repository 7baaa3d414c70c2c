"""evaluate(): mixture and oracle IRM/IBM references, a perfect stub model, CSV + JSON outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import butter, sosfilt

from edgesep.evaluate import evaluate, oracle_mask
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build

SR = 8000


def write_mixture_folder(root: Path, n_items: int = 2, seconds: float = 0.5) -> dict[str, tuple]:
    """``root/{mix,s1,s2}/<id>.wav``: s1 low-band noise, s2 high-band noise (IRM separates them)."""
    rng = np.random.default_rng(0)
    low, high = butter(8, 900, fs=SR, output="sos"), butter(8, 2200, "high", fs=SR, output="sos")
    out = {}
    for i in range(n_items):
        n = int(seconds * SR) + 37 * i
        s1 = sosfilt(low, rng.standard_normal(n)) * 0.3
        s2 = sosfilt(high, rng.standard_normal(n)) * 0.2
        mix = s1 + s2
        for name, sig in (("mix", mix), ("s1", s1), ("s2", s2)):
            (root / name).mkdir(parents=True, exist_ok=True)
            sf.write(root / name / f"utt{i}.wav", sig.astype(np.float32), SR, subtype="FLOAT")
        out[f"utt{i}"] = (mix.astype(np.float32), np.stack([s1, s2]).astype(np.float32))
    return out


class OracleStub(Separator):
    """Returns the true sources (swapped, to exercise the permutation search)."""

    family = "oracle-stub"

    def __init__(self, truth: dict[str, tuple]) -> None:
        super().__init__()
        self.truth = list(truth.values())
        self.sample_rate, self.n_src, self.source_names = SR, 2, ("s1", "s2")
        self.causal, self.lookahead_samples, self.config = False, 0, None

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def separate(self, waveform: np.ndarray, sample_rate: int, *_: float) -> np.ndarray:
        for mix, sources in self.truth:
            if mix.shape == waveform.shape and np.allclose(mix, waveform):
                return sources[::-1].copy()
        raise AssertionError("unknown mixture")


@pytest.fixture
def mixtures(tmp_path: Path) -> tuple[Path, dict[str, tuple]]:
    root = tmp_path / "data"
    truth = write_mixture_folder(root)
    (root / "card.json").write_text('{"name": "fixture"}')
    return root, truth


def test_references_and_perfect_model(tmp_path: Path, mixtures: tuple) -> None:
    root, truth = mixtures
    report = evaluate(OracleStub(truth), root, out_dir=tmp_path / "eval", progress=False)
    mix_row = report.summary["systems"]["mixture"]
    assert abs(mix_row["si_snri"]["mean"]) < 1e-9 and abs(mix_row["sdri"]["mean"]) < 1e-9
    # the mixture as estimate: each source's SI-SNR is its level against the other's
    assert -10 < mix_row["si_snr"]["mean"] < 10
    assert report.mean("oracle-irm", "si_snri") > 10
    assert report.mean("oracle-irm", "sdri") > 10
    assert report.mean("oracle-ibm", "si_snri") > 10
    assert report.mean("model", "si_snr") > 60
    assert report.mean("model", "si_snri") > report.mean("oracle-irm", "si_snri")
    assert report.summary["n_files"] == 2 and report.files == ["utt0", "utt1"]
    assert report.summary["model"]["name"] == "oracle-stub"
    assert report.summary["data"]["card"].endswith("card.json")
    assert len(report.summary["data"]["card_sha256"]) == 64

    assert report.json_path == tmp_path / "eval" / "summary.json"
    written = json.loads(report.json_path.read_text())  # strict JSON: inf SDR -> null
    assert written["systems"]["oracle-irm"] == report.summary["systems"]["oracle-irm"]
    assert written["n_files"] == 2 and written["data"] == report.summary["data"]
    assert report.csv_path is not None
    with report.csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and set(rows[0]) == {"id", "system", "si_snr", "si_snri", "sdr", "sdri"}
    assert {r["system"] for r in rows} == {"mixture", "oracle-irm", "oracle-ibm", "model"}
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["per_file.csv", "summary.json"]


def test_real_model_max_items(mixtures: tuple) -> None:
    root, _ = mixtures
    torch.manual_seed(0)
    report = evaluate(build("convtasnet-test").eval(), root, max_items=1, progress=False)
    assert report.summary["n_files"] == 1 and report.json_path is None
    assert np.isfinite(report.mean("model", "si_snr"))


def test_source_count_mismatch(mixtures: tuple) -> None:
    root, _ = mixtures
    model = build("convtasnet-test", n_src=3).eval()
    with pytest.raises(ValueError, match="has 2 sources but the model separates 3"):
        evaluate(model, root, progress=False)


def test_references_can_be_skipped(mixtures: tuple) -> None:
    root, truth = mixtures
    report = evaluate(OracleStub(truth), root, progress=False, references=False)
    assert set(report.summary["systems"]) == {"mixture", "model"}


def test_binary_mask_is_one_hot_and_irm_is_a_ratio() -> None:
    rng = np.random.default_rng(1)
    sources = rng.standard_normal((2, 4000))
    sources[1, :2000] = 0.0  # the second source silent for the first half
    mix = sources.sum(axis=0)
    for kind in ("irm", "ibm"):
        est = oracle_mask(mix, sources, SR, kind)
        # masks that sum to one in every bin rebuild the mixture exactly
        assert np.allclose(est.sum(axis=0), mix, atol=1e-5)
        # where one source is silent, all of the mixture goes to the other (away from the edge)
        assert np.allclose(est[0, 100:1500], mix[100:1500], atol=1e-5)
    ibm, irm = oracle_mask(mix, sources, SR, "ibm"), oracle_mask(mix, sources, SR, "irm")
    assert not np.allclose(ibm, irm, atol=1e-3)  # binary and ratio masks differ in shared bins
    with pytest.raises(ValueError, match="unknown oracle mask"):
        oracle_mask(mix, sources, SR, "wiener")
