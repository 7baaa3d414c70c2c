"""SQNR theory against quantized synthetic signals, the combination rule, and analyze-quant."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.compress.quant.analysis import (
    combine_snr_db,
    crest_factor_db,
    measured_sqnr_db,
    sqnr_db,
    sqnr_sine_db,
)

N = 200_000


def test_closed_form_for_a_sine() -> None:
    assert sqnr_sine_db(8) == pytest.approx(6.0206 * 8 + 1.7609, abs=1e-3)
    assert sqnr_db(8, 10 * math.log10(2)) == pytest.approx(sqnr_sine_db(8))  # CF of a sine


@pytest.mark.parametrize("bits", [8, 10, 12, 16])
def test_full_scale_sine_matches_6_02_b_plus_1_76(bits: int) -> None:
    t = np.arange(N)
    # not commensurate with the sample rate; the uniform-noise model holds for a sine to about
    # 0.1-0.3 dB at 6-8 bits depending on the frequency, exactly only in the limit
    x = np.sin(2 * np.pi * 0.001234 * t)
    # (2^b levels over [-A, A] have step 2A / (2^b - 1), 0.03 dB above 2A / 2^b at 8 bits)
    assert measured_sqnr_db(x, bits, peak=1.0) == pytest.approx(sqnr_sine_db(bits), abs=0.1)


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "quiet-sine"])
def test_crest_factor_correction(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = {
        "gaussian": rng.standard_normal(N),
        "laplace": rng.laplace(size=N),  # speech-like: heavy tails, high crest factor
        "quiet-sine": 0.1 * np.sin(2 * np.pi * 0.0123 * np.arange(N)),  # 20 dB below full scale
    }[kind]
    peak = 1.0 if kind == "quiet-sine" else float(np.max(np.abs(x)))
    # a sine 20 dB down spans only ~1/10 of the levels: the uniform-noise model needs more bits
    for bits in (12, 16) if kind == "quiet-sine" else (8, 12):
        predicted = sqnr_db(bits, crest_factor_db(x, peak=peak))
        correction = 20 * math.log10(2**bits / (2**bits - 1))
        assert measured_sqnr_db(x, bits, peak=peak) == pytest.approx(
            predicted - correction, abs=0.15
        )
    if kind == "quiet-sine":  # a sine 20 dB down loses 20 dB of SQNR
        assert sqnr_db(8, crest_factor_db(x, peak=1.0)) == pytest.approx(
            sqnr_sine_db(8) - 20, abs=0.01
        )


def test_combination_rule_adds_error_powers() -> None:
    assert combine_snr_db(10.0, 10.0) == pytest.approx(10 - 10 * math.log10(2))
    assert combine_snr_db(10.0, 40.0) == pytest.approx(10.0, abs=0.01)  # noise 30 dB below
    # checked on signals: a source plus two independent errors
    rng = np.random.default_rng(1)
    s = rng.standard_normal(N)
    e1, e2 = 10 ** (-12 / 20) * rng.standard_normal(N), 10 ** (-15 / 20) * rng.standard_normal(N)
    total = 10 * math.log10(np.sum(s**2) / np.sum((e1 + e2) ** 2))
    assert total == pytest.approx(combine_snr_db(12.0, 15.0), abs=0.1)


def test_analyze_quant_cli_predicts_output_quantization(tmp_path: Path) -> None:
    """The bundled model with only its output quantized: at 4 bits the noise is large enough
    to cost dB, and the closed-form prediction must track the measurement."""
    out = tmp_path / "aq.png"
    result = CliRunner().invoke(
        app,
        [
            "analyze-quant", "convtasnet-tiny-8k", "--data", "data/mix8k/synth-test",
            "--max-items", "2", "--bits", "4,12", "--groups", "output", "-o", str(out),
        ],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip
    if result.exit_code != 0 and "data/mix8k" in result.stderr:
        pytest.skip("test mixtures not built (scripts/make_speech_data.sh)")
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    doc = json.loads(out.with_suffix(".json").read_text())
    rows = {r["bits"]: r for r in doc["rows"]}
    assert rows[4]["measured"] < doc["float"] - 0.3  # 4-bit output noise costs quality
    assert rows[12]["measured"] == pytest.approx(doc["float"], abs=0.05)
    for r in rows.values():
        assert r["predicted"] == pytest.approx(r["measured"], abs=1.0)
