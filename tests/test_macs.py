"""MAC counts from the graph against counts worked out by hand from the layer shapes."""

from __future__ import annotations

import pytest
import torch

from edgesep.bench.macs import count_macs, macs_per_second
from edgesep.models.zoo_registry import build


def conv_tasnet_macs_by_hand(n_time: int) -> int:
    """convtasnet-test (N=16 L=16 B=8 H=16 Sc=8 P=3 X=3 R=1, 2 sources), per the paper's
    figure 1: encoder, bottleneck, X*R blocks (1x1 in, depthwise, 1x1 residual, 1x1 skip),
    mask conv, and the decoder run once per source."""
    n, length, b, h, sc, p, blocks, s = 16, 16, 8, 16, 8, 3, 3, 2
    hop = length // 2
    frames = (n_time - length) // hop + 1  # n_time - L is a multiple of the hop here
    per_frame = (
        n * length  # encoder
        + n * b  # bottleneck
        + blocks * (b * h + h * p + h * b + h * sc)
        + sc * s * n  # mask conv
        + s * n * length  # decoder (transposed conv), once per source
    )
    return per_frame * frames


def test_conv_tasnet_count_matches_the_hand_count() -> None:
    model = build("convtasnet-test")
    assert count_macs(model, torch.zeros(1, 1, 8000))["total"] == conv_tasnet_macs_by_hand(8000)


def test_per_second_scales_with_batchless_duration_and_channels() -> None:
    model = build("convtasnet-test")
    mono = macs_per_second(model, seconds=2.0)
    assert mono == pytest.approx(conv_tasnet_macs_by_hand(16000) / 2, rel=1e-3)
    assert macs_per_second(model, seconds=2.0, n_chan=2) == pytest.approx(2 * mono, rel=1e-6)


def test_meta_device_counts_without_computing() -> None:
    real = macs_per_second(build("convtasnet-test"), seconds=1.0)
    with torch.device("meta"):
        ghost = build("convtasnet-test")
    assert macs_per_second(ghost, seconds=1.0) == real


def test_rnn_macs_are_counted() -> None:
    gru = torch.nn.GRU(16, 32, batch_first=True)
    # three gates, each an input and a recurrent matrix product per frame
    assert count_macs(gru, torch.zeros(1, 100, 16))["total"] == 100 * 3 * (16 * 32 + 32 * 32)


@pytest.mark.parametrize(
    "rnn",
    [
        torch.nn.GRU(8, 12, num_layers=2, bidirectional=True, batch_first=True),
        torch.nn.GRU(5, 7),
    ],
)
def test_rnn_formula_equals_the_counted_graph(rnn: torch.nn.RNNBase) -> None:
    x = torch.zeros(3, 20, 8 if rnn.input_size == 8 else 5)
    counted = count_macs(rnn, x, rnn_formula=False)["total"]
    by_formula = count_macs(rnn, x)
    assert by_formula["rnn"] == counted == by_formula["total"]
    assert not any("forward" in vars(m) for m in rnn.modules()), "forward restored"


def test_lstm_formula_where_the_counter_sees_nothing() -> None:
    # on CPU an LSTM runs as one fused mkldnn op that FlopCounterMode has no formula for
    lstm = torch.nn.LSTM(8, 12)
    x = torch.zeros(20, 3, 8)
    assert count_macs(lstm, x, rnn_formula=False)["total"] == 0
    assert count_macs(lstm, x)["total"] == 4 * (8 * 12 + 12 * 12) * 20 * 3


def test_band_split_rnn_is_counted_fast_and_the_same_both_ways() -> None:
    model = build("bsrnn-test")
    mix = torch.zeros(1, 1, 800)
    assert count_macs(model, mix)["total"] == count_macs(model, mix, rnn_formula=False)["total"]
