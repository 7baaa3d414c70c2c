"""1-D convs lifted to 2-D: the same function, and step graphs that ONNX Runtime blocks (NCHWc)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgesep.export.streaming import check_step_parity, export_step_onnx
from edgesep.models.zoo_registry import build
from edgesep.nn.conv_lift import Conv1dAs2d, lift_conv1d
from edgesep.nn.decoder import OverlapAddDecoder


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 1},
        {"kernel_size": 3, "dilation": 4, "groups": 8},
        {"kernel_size": 32, "stride": 16, "bias": False},
        {"kernel_size": 3, "padding": 2, "dilation": 2},
    ],
)
def test_lifted_conv_computes_the_same_on_rank_4_input(kwargs: dict[str, int]) -> None:
    torch.manual_seed(0)
    c_in = 1 if kwargs["kernel_size"] == 32 else 8
    conv = nn.Conv1d(c_in, 8, **kwargs)  # type: ignore[arg-type]
    x = torch.randn(2, c_in, 70)
    want = conv(x)
    assert lift_conv1d(conv) == 1 and isinstance(conv, Conv1dAs2d)
    assert torch.equal(conv(x), want), "3-D input: still the Conv1d"
    got = conv(x.unsqueeze(2))
    assert got.shape == (want.shape[0], want.shape[1], 1, want.shape[2])
    torch.testing.assert_close(got[:, :, 0], want, rtol=1e-5, atol=1e-6)


def test_lift_leaves_conv_subclasses_and_state_dicts_alone() -> None:
    model = nn.Sequential(nn.Conv1d(4, 8, 1), OverlapAddDecoder(8, 4), nn.Conv1d(1, 1, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert lift_conv1d(model) == 2
    assert type(model[1]) is OverlapAddDecoder
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def _conv_ranks(path: Path) -> set[int]:
    proto = onnx.load(str(path))
    weights = {i.name: len(i.dims) for i in proto.graph.initializer}
    return {weights[n.input[1]] for n in proto.graph.node if n.op_type == "Conv"}


@pytest.mark.parametrize(
    ("overrides", "ranks"),
    [
        # BN folds away, the block is rank-agnostic: every conv but the decoder's goes 2-D
        ({"norm": "BN", "norm_order": "norm_act", "act": "relu", "decoder": "ola"}, {3, 4}),
        # cLN normalises (B, C, T) tensors: the export keeps the 1-D graph
        ({"norm": "cLN"}, {3}),
    ],
)
def test_step_graph_lifts_where_the_core_allows_it(
    overrides: dict[str, object], ranks: set[int], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = build("convtasnet-test", causal=True, **overrides).eval()
    if overrides["norm"] == "BN":  # non-trivial BN statistics, so the folding is exercised
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
    path = export_step_onnx(model, tmp_path / "step.onnx", hops_per_step=3, dynamic=True)
    assert _conv_ranks(path) == ranks
    assert check_step_parity(model, path, n_steps=10) <= 1e-4
    flat = export_step_onnx(model, tmp_path / "flat.onnx", hops_per_step=3, lift_2d=False)
    assert _conv_ranks(flat) == {3}
    assert np.isfinite(check_step_parity(model, flat, n_steps=4))
