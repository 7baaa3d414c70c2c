"""Fake quantization against hand-computed values, and streamed calibration statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesep.compress.quant.calibrate import (
    Histogram,
    MinMax,
    expected_mse,
    mse_range,
    percentile_range,
)
from edgesep.compress.quant.fakequant import FakeQuant, WeightQuant, fake_quant, qrange


def test_integer_ranges() -> None:
    assert qrange(8, True) == (-128, 127)
    assert qrange(8, False) == (0, 255)
    assert qrange(4, True) == (-8, 7)
    assert qrange(16, False) == (0, 65535)
    for bad in (3, 17):
        with pytest.raises(ValueError, match="bits"):
            qrange(bad, True)


def test_symmetric_4bit_by_hand() -> None:
    # s = 0.25, z = 0, integers [-8, 7]: round(x / s) clamped, times s
    x = torch.tensor([-1.0, -0.26, 0.0, 0.24, 0.5, 2.0, -3.0])
    out = fake_quant(x, torch.tensor([0.25]), torch.tensor([0.0]), -8, 7)
    assert out.tolist() == [-1.0, -0.25, 0.0, 0.25, 0.5, 1.75, -2.0]


def test_asymmetric_range_by_hand() -> None:
    q = FakeQuant(4, signed=False)  # [0, 15]
    q.set_range(-0.5, 1.0)  # s = 1.5 / 15 = 0.1, z = 0 - round(-0.5 / 0.1) = 5
    assert q.scale.item() == pytest.approx(0.1)
    assert q.zero_point.item() == 5
    x = torch.tensor([0.33, -0.5, 0.0, 1.2, -0.9])
    # round(3.3) + 5 = 8 -> 0.3; -0.5 -> 0 -> -0.5; 0 exact; 1.2 -> 17 -> 15 -> 1.0; -0.9 -> -0.5
    assert q(x).tolist() == pytest.approx([0.3, -0.5, 0.0, 1.0, -0.5])


def test_range_always_contains_zero() -> None:
    q = FakeQuant(8)
    q.set_range(0.5, 2.0)  # a ReLU-like range that misses 0 is widened to [0, 2]
    assert q.zero_point.item() == 0
    assert q(torch.tensor([0.0])).item() == 0.0


def test_per_channel_weights_by_hand() -> None:
    w = torch.tensor([[[1.0], [-0.5]], [[0.1], [0.02]]])  # (C_out 2, C_in 2, K 1)
    wq = WeightQuant(w, bits=8)
    # channel scales max|w| / 127
    assert wq.quant.scale.tolist() == pytest.approx([1 / 127, 0.1 / 127])
    out = wq(w)
    expected = [
        [[1.0], [round(-0.5 * 127) / 127]],
        [[0.1], [round(0.02 / 0.1 * 127) * 0.1 / 127]],
    ]
    assert out.tolist() == [[[pytest.approx(v[0])] for v in row] for row in expected]


def test_ste_and_lsq_gradients_by_hand() -> None:
    # 4-bit signed, s = 1: 0.3 is inside the range, 100 is clipped at qmax = 7
    q = FakeQuant(4, symmetric=True)
    q.set_range(-7.0, 7.0)
    x = torch.tensor([0.3, 100.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [1.0, 0.0]  # STE inside, 0 when clipped
    # LSQ: d/ds = (round(x/s) - x/s) inside, qmax when clipped; d/d(log s) = s * d/ds, s = 1
    want = (0.0 - 0.3) + 7.0
    grad = q.log_scale.grad
    assert grad is not None and grad.item() == pytest.approx(want, rel=1e-5)


def test_modes_observe_and_off_pass_through() -> None:
    q = FakeQuant(4)
    q.set_range(0.0, 1.0)
    x = torch.tensor([0.123, 0.77])
    seen = MinMax()
    q.mode, q.observer = "observe", seen
    assert torch.equal(q(x), x) and (seen.lo, seen.hi) == pytest.approx((0.123, 0.77))
    q.mode = "off"
    assert torch.equal(q(x), x)
    q.mode = "quant"
    assert not torch.equal(q(x), x)


def test_streamed_histogram_matches_all_data_percentiles() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal(5000).astype(np.float32) for _ in range(8)]
    everything = np.concatenate(batches)
    mm = MinMax()
    for b in batches:
        mm.update(torch.from_numpy(b))
    assert (mm.lo, mm.hi) == (everything.min(), everything.max())
    hist = Histogram(mm.lo, mm.hi, n_bins=2048)
    for b in batches:  # merged batch by batch; memory stays n_bins counts
        hist.update(torch.from_numpy(b))
    assert hist.counts.shape == (2048,) and hist.counts.sum() == everything.size
    width = (mm.hi - mm.lo) / 2048
    lo, hi = percentile_range(hist, 99.0)
    assert lo == pytest.approx(np.percentile(everything, 1.0), abs=width)
    assert hi == pytest.approx(np.percentile(everything, 99.0), abs=width)


def test_mse_range_clips_outliers_and_predicts_the_error() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(40000), [40.0, -35.0]]).astype(np.float32)
    hist = Histogram(float(x.min()), float(x.max()))
    hist.update(torch.from_numpy(x))
    # at 4 bits, rounding noise over the full range costs more than clipping two outliers
    lo, hi = mse_range(hist, 16)
    assert -10.0 < lo < -1.0 and 1.0 < hi < 10.0

    def real_mse(lo: float, hi: float) -> float:
        q = FakeQuant(4)
        q.set_range(lo, hi)
        with torch.no_grad():
            return float(((q(torch.from_numpy(x)) - torch.from_numpy(x)) ** 2).mean())

    assert real_mse(lo, hi) < 0.5 * real_mse(float(x.min()), float(x.max()))
    predicted = float(expected_mse(hist, torch.tensor([lo]), torch.tensor([hi]), 16)[0])
    assert predicted == pytest.approx(real_mse(lo, hi), rel=0.25)
