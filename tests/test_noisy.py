"""Noise synthesis (spectra, babble, transients, recordings) and WHAM!-layout noisy mixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgesep.data.datasets import MixtureDataset
from edgesep.data.noisy import build_noisy_mixtures
from edgesep.data.synth.noise import babble, coloured_noise, make_noise, transients

SR = 8000


def _slope_db_per_octave(x: np.ndarray) -> float:
    """Least-squares slope of the power spectrum in dB per octave between 100 Hz and 3 kHz."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    band = (f > 100) & (f < 3000)
    slope = np.polyfit(np.log2(f[band]), 10 * np.log10(spec[band]), 1)[0]
    return float(slope)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0, -1.0])
def test_coloured_noise_has_the_power_law(alpha: float) -> None:
    x = coloured_noise(np.random.default_rng(0), 4 * SR, alpha)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0)
    # 1/f^alpha power: -3.01 alpha dB per octave
    assert _slope_db_per_octave(x) == pytest.approx(-10 * np.log10(2) * alpha, abs=0.4)


def test_babble_sums_several_talkers_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    pool = [np.sin(2 * np.pi * (100 + 37 * k) * np.arange(SR) / SR) for k in range(12)]
    a = babble(np.random.default_rng(5), SR // 2, pool, n_talkers=(4, 4))
    b = babble(np.random.default_rng(5), SR // 2, pool, n_talkers=(4, 4))
    np.testing.assert_array_equal(a, b)
    peaks = np.fft.rfftfreq(SR // 2, 1 / SR)[np.argsort(np.abs(np.fft.rfft(a)))[-4:]]
    assert len({round(p) for p in peaks}) == 4  # four distinct talkers (tones) present
    with pytest.raises(ValueError, match="at least 2"):
        babble(rng, 100, pool[:1])


def test_transients_are_impulsive() -> None:
    x = transients(np.random.default_rng(2), 4 * SR, SR)
    kurtosis = np.mean(x**4) / np.mean(x**2) ** 2
    assert kurtosis > 10  # Gaussian noise: 3


def test_make_noise_real_and_errors() -> None:
    rec = [np.linspace(-1, 1, 300)]
    x = make_noise("real", np.random.default_rng(0), 1000, SR, recordings=rec)
    assert x.shape == (1000,) and np.sqrt(np.mean(x**2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs noise recordings"):
        make_noise("real", np.random.default_rng(0), 10, SR)
    with pytest.raises(ValueError, match="unknown noise kind"):
        make_noise("rain", np.random.default_rng(0), 10, SR)


def _clean_folder(root: Path, n: int = 3) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        s = np.round(rng.standard_normal((2, SR // 2)) * 3000).astype(np.int16)
        for name, x in (("s1", s[0]), ("s2", s[1]), ("mix", s.astype(np.int32).sum(0))):
            (root / name).mkdir(parents=True, exist_ok=True)
            sf.write(root / name / f"m{i}.wav", x.astype(np.int16), SR, subtype="PCM_16")


def _corpus(root: Path) -> None:
    for k in range(3):
        folder = root / "train" / f"voice{k}"
        folder.mkdir(parents=True)
        t = np.arange(SR) / SR
        sf.write(folder / "u.wav", 0.3 * np.sin(2 * np.pi * (150 + 50 * k) * t), SR)


def test_wham_layout_exact_sums_snr_and_loader(tmp_path: Path) -> None:
    _clean_folder(tmp_path / "clean")
    _corpus(tmp_path / "corpus")
    (tmp_path / "rec").mkdir()
    sf.write(
        tmp_path / "rec" / "fan.wav", np.random.default_rng(3).standard_normal(SR) * 0.1, 16000
    )
    card = build_noisy_mixtures(
        tmp_path / "clean",
        tmp_path / "noisy",
        babble_corpus=tmp_path / "corpus",
        noise_dir=tmp_path / "rec",
        snr_db=(-2.0, -2.0),
        seed=4,
    )
    out = tmp_path / "noisy"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        ["mix_both", "mix_clean", "noise", "s1", "s2"]
    )
    assert card["params"]["kinds"][-1] == "real" and card["counts"]["mixtures"] == 3
    for i in range(3):
        r = {
            f: sf.read(out / f / f"m{i}.wav", dtype="int16")[0].astype(np.int32)
            for f in ("mix_both", "mix_clean", "noise", "s1", "s2")
        }
        np.testing.assert_array_equal(r["mix_clean"], r["s1"] + r["s2"])
        np.testing.assert_array_equal(r["mix_both"], r["s1"] + r["s2"] + r["noise"])
        louder = max(np.sum(r["s1"].astype(float) ** 2), np.sum(r["s2"].astype(float) ** 2))
        snr = 10 * np.log10(louder / np.sum(r["noise"].astype(float) ** 2))
        assert snr == pytest.approx(-2.0, abs=0.05)
    both = MixtureDataset(out, mixture="both")
    item = both[0]
    np.testing.assert_allclose(item["mix"], item["sources"].sum(0) + item["noise"], atol=1e-6)
    clean = MixtureDataset(out, mixture="clean")[0]
    np.testing.assert_allclose(clean["mix"], clean["sources"].sum(0), atol=1e-6)


def test_babble_needs_a_corpus(tmp_path: Path) -> None:
    _clean_folder(tmp_path / "clean", n=1)
    with pytest.raises(ValueError, match="babble_corpus"):
        build_noisy_mixtures(tmp_path / "clean", tmp_path / "noisy", kinds=["babble"])


def test_evaluate_reads_the_noisy_mixtures(tmp_path: Path) -> None:
    from edgesep.evaluate import evaluate
    from edgesep.models.zoo_registry import build

    _clean_folder(tmp_path / "clean", n=2)
    build_noisy_mixtures(tmp_path / "clean", tmp_path / "noisy", kinds=["coloured"], snr_db=(0, 0))
    model = build("convtasnet-test").eval()
    runs = {
        kind: evaluate(model, tmp_path / "noisy", progress=False, references=False, mixture=kind)
        for kind in ("clean", "both")
    }
    # the unprocessed noisy mixture is further from each speaker than the clean one
    assert runs["both"].mean("mixture", "si_snr") < runs["clean"].mean("mixture", "si_snr") - 1
