"""Conv-TasNet variants: MiTAS sharing, pyramid depthwise convs, BN + overlap-add edge variant,
BatchNorm folding, and the causal streaming core, each checked against an independent
construction of the same function (tied weights copied, kernels merged, ConvTranspose1d)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from edgesep.export import check_parity, export_onnx
from edgesep.models.convtasnet import ConvTasNet, sharing_report
from edgesep.models.convtasnet_fold import fold_batchnorm
from edgesep.models.zoo_registry import build
from edgesep.nn.decoder import OverlapAddDecoder
from edgesep.zoo import DEFAULT_MODEL, ZOO_DIR

SMALL: dict[str, Any] = {
    "n_repeats": 2
}  # convtasnet-test has one repeat; sharing across stacks needs two
CAUSAL: dict[str, Any] = {"causal": True, "norm": "cLN"}
EDGE: dict[str, Any] = {"norm": "BN", "norm_order": "norm_act", "act": "relu", "decoder": "ola"}


def make(name: str = "convtasnet-test", seed: int = 0, **overrides: Any) -> ConvTasNet:
    torch.manual_seed(seed)
    model = build(name, **overrides)
    assert isinstance(model, ConvTasNet)
    return model


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Running statistics and affine parameters far from the identity, so folding shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                assert m.running_mean is not None and m.running_var is not None
                n = m.num_features
                m.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(1 + 0.2 * torch.randn(n, generator=gen))
                m.bias.copy_(0.2 * torch.randn(n, generator=gen))


# -- defaults --------------------------------------------------------------------------------
def test_defaults_still_load_the_bundled_weights_strictly() -> None:
    model = make("convtasnet-tiny")
    model.load_state_dict(load_file(str(ZOO_DIR / f"{DEFAULT_MODEL}.safetensors")), strict=True)
    assert make("convtasnet-paper").n_params() == 5_050_545


# -- MiTAS sharing ---------------------------------------------------------------------------
def test_paper_mitas_matches_the_published_reduction() -> None:
    with torch.device("meta"):
        n = build("convtasnet-paper-mitas").n_params()
    assert n == 1_859_761  # MiTAS (Tuan et al. 2021): 5.1 M -> 1.8 M
    rows = {(r["config"], r["share_depthwise"], r["share_pointwise"]): r for r in sharing_report()}
    assert rows[("convtasnet-paper", "stack", "stack")]["n_params"] == n
    assert rows[("convtasnet-paper", "none", "none")]["n_params"] == 5_050_545
    assert len(rows) == 2 * 16


def _untied_state(shared: ConvTasNet, untied: ConvTasNet) -> dict[str, torch.Tensor]:
    """``untied``'s state dict filled from ``shared``, each block's borrowed conv copied in."""
    owner = {id(m): n for n, m in shared.named_modules()}
    out = {}
    for key in untied.state_dict():
        if not key.startswith("blocks."):
            out[key] = shared.state_dict()[key]
            continue
        _, block, conv_name, tail = key.split(".", 3)
        module = getattr(shared.blocks[int(block)], conv_name)
        out[key] = shared.state_dict()[f"{owner[id(module)]}.{tail}"]
    return out


@pytest.mark.parametrize("depthwise", ["none", "stack", "dilation", "all"])
@pytest.mark.parametrize("pointwise", ["none", "stack", "dilation", "all"])
def test_sharing_equals_the_untied_model_with_copied_weights(
    depthwise: str, pointwise: str, tmp_path: Path
) -> None:
    kw = {**SMALL, "conv_kernel_sizes": (3, 5) if depthwise == "dilation" else ()}
    shared = make(share_depthwise=depthwise, share_pointwise=pointwise, **kw).eval()
    untied = make(seed=1, **kw).eval()
    n_blocks, n_rep = shared.config.n_blocks, shared.config.n_repeats
    n_owned = {"none": n_blocks * n_rep, "stack": n_blocks, "dilation": n_rep, "all": 1}
    block = untied.tcn_blocks()[0]
    dw = sum(p.numel() for m in block.depthwise_convs() for p in m.parameters())
    pointwise_convs = (block.in_conv, block.res_conv, block.skip_conv)
    pw = sum(p.numel() for m in pointwise_convs if m is not None for p in m.parameters())
    n_all = n_blocks * n_rep
    saved = (n_all - n_owned[depthwise]) * dw + (n_all - n_owned[pointwise]) * pw
    assert shared.n_params() == untied.n_params() - saved
    # each shared weight is stored once: safetensors refuses aliased tensors
    save_file(shared.state_dict(), str(tmp_path / "w.safetensors"))
    untied.load_state_dict(_untied_state(shared, untied), strict=True)
    mix = noise(2, 1, 1003)
    with torch.no_grad():
        torch.testing.assert_close(shared(mix), untied(mix), rtol=0, atol=1e-6)
        shared.train()
        torch.testing.assert_close(shared(mix), untied(mix), rtol=0, atol=1e-5)


def test_shared_convs_are_one_module_with_per_block_norms() -> None:
    model = make(share_depthwise="all", share_pointwise="stack", **SMALL)
    first, later = model.blocks[0], model.blocks[model.config.n_blocks]
    assert later.in_conv is first.in_conv and later.skip_conv is first.skip_conv
    assert model.blocks[1].dconv is first.dconv and model.blocks[1].dilation == 2
    assert later.norm1 is not first.norm1 and later.act1 is not first.act1
    assert "shares" in repr(later)


# -- pyramid ---------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_pyramid_equals_one_conv_with_the_kernels_merged(causal: bool) -> None:
    kw = {**CAUSAL} if causal else {}
    pyramid = make(conv_kernel_sizes=(3, 5), **kw).eval()
    single = make(conv_kernel_size=5, seed=1, **kw).eval()
    state = pyramid.state_dict()
    merged = {k: v for k, v in state.items() if ".dconv." not in k}
    for i, _ in enumerate(pyramid.blocks):
        small, big = state[f"blocks.{i}.dconv.0.weight"], state[f"blocks.{i}.dconv.1.weight"]
        # a 3-tap kernel is the last 3 taps of a causal 5-tap window, the middle 3 of a centred one
        offset = 2 if causal else 1
        weight = big.clone()
        weight[..., offset : offset + 3] += small
        merged[f"blocks.{i}.dconv.weight"] = weight
        merged[f"blocks.{i}.dconv.bias"] = state[f"blocks.{i}.dconv.0.bias"]
    single.load_state_dict(merged, strict=True)
    mix = noise(1, 1, 2001)
    with torch.no_grad():
        torch.testing.assert_close(pyramid(mix), single(mix), rtol=0, atol=1e-6)
        torch.testing.assert_close(pyramid.train()(mix), single(mix), rtol=0, atol=1e-5)


# -- edge: overlap-add decoder, BatchNorm folding ----------------------------------------------
def test_overlap_add_decoder_equals_conv_transpose() -> None:
    torch.manual_seed(0)
    ola, convt = OverlapAddDecoder(6, 8), nn.ConvTranspose1d(6, 1, 8, stride=4, bias=False)
    with torch.no_grad():
        ola.weight.copy_(convt.weight.permute(2, 0, 1))
    for n_frames in (1, 2, 9):
        x = noise(3, 6, n_frames)
        torch.testing.assert_close(ola(x), convt(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("overrides", [{}, CAUSAL, {"conv_kernel_sizes": (3, 5)}])
def test_fold_batchnorm_keeps_the_output_and_the_input(overrides: dict[str, Any]) -> None:
    model = make(**{**EDGE, **overrides, "norm": "BN"}).eval()
    randomize_batchnorm(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert folded.config.norm == "none" and not folded.training
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    mix = noise(2, 1, 1501)
    with torch.no_grad():
        want, got = model(mix), folded(mix)
    assert (want - got).abs().max() > 0  # folding is not a no-op copy
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "norm='gLN'"),
        ({"norm": "BN"}, "norm_order"),
        ({**EDGE, "share_pointwise": "stack"}, "shared"),
    ],
)
def test_fold_batchnorm_refuses_what_cannot_fold(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fold_batchnorm(make(**overrides))


def test_config_validation_names_the_option() -> None:
    for field in ("norm_order", "share_depthwise", "decoder"):
        bogus: dict[str, Any] = {field: "bogus"}
        with pytest.raises(ValueError, match=field):
            make(**bogus)
    with pytest.raises(ValueError, match="causal"):
        make(causal=True, norm="gLN")


# -- streaming core --------------------------------------------------------------------------
STREAM_CASES: dict[str, dict[str, Any]] = {
    "cLN": CAUSAL,
    "edge": {**EDGE, "causal": True},
    "pyramid": {**CAUSAL, "conv_kernel_sizes": (3, 5)},
    "shared": {**CAUSAL, **SMALL, "share_depthwise": "dilation", "share_pointwise": "stack"},
    "no-skip": {**CAUSAL, "skip_chan": 0, "mask_act": "sigmoid"},
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_step_core_equals_offline_one_hop_late(case: str) -> None:
    model = make(**STREAM_CASES[case]).eval()
    if model.config.norm == "BN":
        randomize_batchnorm(model)
    hop = model.stream_hop
    assert model.stream_core_delay == hop and model.stream_delay == model.lookahead_samples
    mix = noise(3, 40 * hop)
    with torch.no_grad():
        offline = model(mix[:, None])[:, :, 0]
        state = model.init_core_state(3)
        shapes = [s.shape for s in state]
        outs, start = [], 0
        for k in [1, 3, 2, 1, 5] * 3:
            if start + k * hop > mix.shape[-1]:
                break
            before = [s.clone() for s in state]
            out, new_state = model.step_core(mix[:, start : start + k * hop], state)
            assert all(torch.equal(a, b) for a, b in zip(before, state, strict=True))
            # constant cost: the state does not grow with the stream
            assert [s.shape for s in new_state] == shapes
            outs.append(out)
            state, start = new_state, start + k * hop
    streamed = torch.cat(outs, dim=-1)
    assert streamed[..., :hop].abs().max() == 0
    n = streamed.shape[-1] - hop
    torch.testing.assert_close(streamed[..., hop:], offline[..., :n], rtol=0, atol=1e-5)
    assert len(model.core_state_names()) == len(state)


# -- ONNX ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("convtasnet-tiny-edge", {}),
        ("convtasnet-tiny-edge", {"fold": True}),
        ("convtasnet-test", {"conv_kernel_sizes": (3, 5)}),
        ("convtasnet-test", {**SMALL, "share_depthwise": "all", "share_pointwise": "stack"}),
    ],
)
def test_onnx_export_matches_eager(name: str, overrides: dict[str, Any], tmp_path: Path) -> None:
    fold = bool(overrides.pop("fold", False))
    model: ConvTasNet = make(name, **overrides).eval()
    randomize_batchnorm(model)
    if fold:
        model = fold_batchnorm(model)
    path = export_onnx(model, tmp_path / "m.onnx", example_seconds=0.25)
    assert check_parity(model, path, lengths=[1001, 3333], rtol=1e-4, atol=1e-5) <= 1e-4


class _Step(nn.Module):
    def __init__(self, model: ConvTasNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, new = self.model.step_core(x, list(state))
        return (out, *new)


def test_step_core_exports_with_explicit_state(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = fold_batchnorm(make(**{**EDGE, "causal": True}))
    k, hop = 2, model.stream_hop
    state = model.init_core_state(1)
    names = model.core_state_names()
    path = str(tmp_path / "step.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and folding notes
        torch.onnx.export(
            _Step(model),
            (noise(1, k * hop), *state),
            path,
            input_names=["chunk", *names],
            output_names=["sources", *(f"{n}_out" for n in names)],
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = [s.numpy() for s in state]
    for i in range(6):
        chunk = noise(1, k * hop, seed=i + 1)
        with torch.no_grad():
            want, state = model.step_core(chunk, state)
        got = session.run(None, {"chunk": chunk.numpy(), **dict(zip(names, feeds, strict=True))})
        feeds = got[1:]
        np.testing.assert_allclose(got[0], want.numpy(), rtol=1e-4, atol=1e-5)


def test_registered_variants_keep_their_promises() -> None:
    tiny = make("convtasnet-tiny")
    edge = make("convtasnet-tiny-edge")
    assert isinstance(edge.decoder, OverlapAddDecoder)
    assert not any(isinstance(m, nn.PReLU | nn.ConvTranspose1d) for m in edge.modules())
    assert make("convtasnet-tiny-edge-causal").causal
    assert make("convtasnet-tiny-mitas").n_params() < 0.5 * tiny.n_params()
    assert make("convtasnet-tiny-pyramid").blocks[0].kernel_sizes == (3, 5)
    assert (
        dataclasses.replace(
            edge.config, norm="gLN", norm_order="act_norm", act="prelu", decoder="transposed"
        )
        == tiny.config
    )
