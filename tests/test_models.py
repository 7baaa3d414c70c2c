"""Conformance suite for every registered model config (the Separator contract of DESIGN.md).

Heavier checks skip paper-sized configs (over 1.5 M parameters) to keep the run fast on 2 CPU
cores; ``convtasnet-paper``'s size is still checked against the paper.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from edgesep.export import (
    ParityError,
    check_parity,
    check_step_parity,
    export_onnx,
    export_step_onnx,
)
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build, list_configs

ALL = [name for name, _ in list_configs()]


def _n_params(name: str) -> int:
    return build(name).n_params()


# paper-sized models (millions of parameters) only get the cheap checks
HEAVY = {name for name in ALL if _n_params(name) > 1_500_000}
LIGHT = [name for name in ALL if name not in HEAVY]
CAUSAL = [name for name in LIGHT if build(name).causal]


def make(name: str, seed: int = 0, **overrides: object) -> Separator:
    torch.manual_seed(seed)
    model: Separator = build(name, **overrides)
    return model


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_the_known_configs() -> None:
    assert {"convtasnet-paper", "convtasnet-tiny", "convtasnet-tiny-causal"} <= set(ALL)
    assert CAUSAL, "at least one causal config is registered"


def test_paper_size_matches_the_paper() -> None:
    # Luo & Mesgarani 2019, N=512 L=16 B=128 H=512 Sc=128 P=3 X=8 R=3: 5.05 M parameters
    model = make("convtasnet-paper")
    c = model.config
    assert (c.n_filters, c.kernel_size, c.bn_chan, c.hid_chan, c.skip_chan) == (
        512,
        16,
        128,
        512,
        128,
    )
    assert (c.conv_kernel_size, c.n_blocks, c.n_repeats) == (3, 8, 3)
    assert model.n_params() == pytest.approx(5.05e6, rel=0.01)


def test_tiny_is_edge_sized() -> None:
    assert make("convtasnet-tiny").n_params() <= 500_000


@pytest.mark.parametrize("name", ALL)
def test_builds_on_the_meta_device(name: str) -> None:
    # `edgesep models` and the MAC counter build every config on the meta device (no memory,
    # no compute), so constructors must not read tensor values (.item(), numpy, ...)
    with torch.device("meta"):
        ghost = build(name)
    assert ghost.n_params() == _n_params(name)


@pytest.mark.parametrize("name", ALL)
def test_contract_attributes(name: str) -> None:
    model = make(name)
    assert isinstance(model, Separator)
    assert model.sample_rate > 0 and model.n_src >= 1
    assert len(model.source_names) == model.n_src
    assert model.lookahead_samples >= 0
    assert model.causal == model.config.causal


@pytest.mark.parametrize("name", LIGHT)
@pytest.mark.parametrize("n_time", [1, 7, 8001])
def test_shape_and_finite_for_odd_lengths_and_stereo(name: str, n_time: int) -> None:
    model = make(name).eval()
    mix = noise(2, 2, n_time)
    with torch.no_grad():
        out = model(mix)
        right = model(mix[:, 1:])
    assert out.shape == (2, model.n_src, 2, n_time)
    assert torch.isfinite(out).all()
    # channels are separated independently: the stereo output's right channel is the mono output
    torch.testing.assert_close(out[:, :, 1:], right, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", LIGHT)
def test_rejects_input_without_channel_axis(name: str) -> None:
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        make(name)(noise(2, 100))


def _dead_parameters(model: Separator) -> set[str]:
    """Parameters that get no gradient by construction.

    With a skip path (skip_chan > 0) the mask is computed from the summed skip outputs, so the
    residual output of the last TCN block, and its res_conv, feed nothing (as in the paper, whose
    5.05 M count includes it).
    """
    if getattr(model.config, "skip_chan", 0) == 0:
        return set()
    last = len(model.blocks) - 1
    dead = {f"blocks.{last}.res_conv.weight", f"blocks.{last}.res_conv.bias"}
    # a res_conv shared with earlier blocks is registered (and trained) under their name
    return dead & {name for name, _ in model.named_parameters()}


@pytest.mark.parametrize("name", LIGHT)
def test_gradients_reach_every_parameter(name: str) -> None:
    model = make(name).train()
    out = model(noise(2, 1, 1000))
    (out * noise(*out.shape, seed=1)).sum().backward()
    no_grad = {
        k for k, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)
    }
    assert no_grad == _dead_parameters(model)
    for k, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), k


@pytest.mark.parametrize("name", LIGHT)
def test_train_mode_equals_eval_mode(name: str) -> None:
    # training mode may take faster-to-differentiate paths (Conv-TasNet computes its depthwise
    # convs as shifted products); they must compute the same function. BatchNorm is the one
    # layer meant to differ (batch statistics), so it stays in eval mode here.
    model = make(name)
    mix = noise(2, 1, 3001)
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    with torch.no_grad():
        train_out = model(mix)
        eval_out = model.eval()(mix)
    assert not any(m.training for m in model.modules())
    torch.testing.assert_close(train_out, eval_out, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", LIGHT)
def test_state_dict_round_trip_through_safetensors(name: str, tmp_path: Path) -> None:
    model = make(name, seed=0).eval()
    path = tmp_path / "weights.safetensors"
    save_file(model.state_dict(), str(path))
    fresh = make(name, seed=1).eval()
    mix = noise(1, 1, 2000)
    with torch.no_grad():
        assert not torch.equal(fresh(mix), model(mix)), "a different seed should differ"
        fresh.load_state_dict(load_file(str(path)), strict=True)
        assert torch.equal(fresh(mix), model(mix))
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def _causal_models(streaming: bool = False) -> list[tuple[str, dict[str, object]]]:
    """Causal configs; ``streaming``: those with a step graph of their own (an elastic
    supernet streams through its extracted subnets, tests/test_runtime_adaptive.py)."""
    names = [n for n in CAUSAL if not (streaming and build(n).family == "convtasnet-elastic")]
    cases: list[tuple[str, dict[str, object]]] = [(name, {}) for name in names]
    cases.append(("convtasnet-test", {"causal": True, "norm": "cLN"}))
    return cases


def _perturb_after(mix: torch.Tensor, start: int, scale: float = 1.0) -> torch.Tensor:
    changed = mix.clone()
    changed[..., start:] += scale * noise(*changed[..., start:].shape, seed=7)
    return changed


@pytest.mark.parametrize(("name", "overrides"), _causal_models())
def test_causal_output_ignores_the_future(name: str, overrides: dict[str, object]) -> None:
    model = make(name, **overrides).eval()
    assert model.causal
    look, hop = model.lookahead_samples, model.hop
    # Where in a frame the full lookahead is reached depends on the family: at a frame start for
    # Conv-TasNet, one sample later for sqrt-Hann STFT models (the window is exactly 0 at the
    # frame start). So probe both phases; the lookahead must be reached at one of them.
    reach = 0.0
    for t in (40 * hop, 40 * hop + 1):
        mix = noise(1, 1, t + look + 600)
        with torch.no_grad():
            base = model(mix)
            later = model(_perturb_after(mix, t + look + 1))
            # loud: at the edge, the sample reaches t only through both window tapers
            at_edge = model(_perturb_after(mix, t + look, scale=100.0))
        torch.testing.assert_close(later[..., : t + 1], base[..., : t + 1], rtol=0, atol=1e-6)
        assert (later[..., t + 1 :] - base[..., t + 1 :]).abs().max() > 1e-3
        reach = max(reach, float((at_edge[..., t] - base[..., t]).abs().max()))
    # the stated lookahead is not larger than needed: sample t + lookahead does reach time t
    # (window tapers make that contribution small, hence the low threshold)
    assert reach > 1e-7


def test_non_causal_model_does_see_the_future() -> None:
    # the probe above can detect leakage: a gLN model's past changes with its future
    model = make("convtasnet-test").eval()
    mix = noise(1, 1, 1500)
    with torch.no_grad():
        base, later = model(mix), model(_perturb_after(mix, 1000))
    assert (later[..., :500] - base[..., :500]).abs().max() > 1e-5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"causal": True, "norm": "gLN"}, "cLN"),
        ({"kernel_size": 15}, "even"),
        ({"source_names": ("a", "b", "c")}, "n_src"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build("convtasnet-test", **overrides)


def test_unknown_config_name_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="convtasnet-tiny"):
        build("convtasnet-tyni")


# ONNX export of every family: the 44.1 kHz music configs are covered by their family's own
# test-sized config, which has the same graph structure
ONNX = [name for name in LIGHT if build(name).sample_rate <= 16000]


@pytest.mark.parametrize("name", ONNX)
def test_every_model_exports_to_onnx_with_parity(name: str, tmp_path: Path) -> None:
    model = make(name).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", example_seconds=0.5)
    rate = model.sample_rate
    check_parity(model, path, lengths=[rate // 4 + 3, rate + 1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "overrides"), _causal_models(streaming=True))
def test_causal_models_export_a_streaming_step_graph(
    name: str, overrides: dict[str, object], tmp_path: Path
) -> None:
    import onnxruntime as ort

    model = make(name, **overrides).eval()
    path = export_step_onnx(model, tmp_path / "step.onnx", hops_per_step=2)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == ["chunk", *model.core_state_names()]
    assert session.get_inputs()[0].shape == [1, 2 * model.stream_hop]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["edgesep.stream_delay"] == str(model.lookahead_samples)
    assert check_step_parity(model, path, n_steps=12) <= 1e-4


def test_onnx_export_matches_eager_at_other_lengths(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = make("convtasnet-test").eval()
    path = export_onnx(model, tmp_path / "model.onnx", example_seconds=1.0)
    assert path.exists() and not model.training
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("mix", "sources")
    assert isinstance(inp.shape[0], str) and isinstance(inp.shape[2], str)
    # traced at 8000 samples; other lengths prove the time axis is really dynamic
    worst = check_parity(model, path, lengths=[4001, 12345], rtol=1e-4, atol=1e-5)
    assert 0 <= worst <= 1e-4
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["edgesep.sample_rate"] == "8000" and meta["edgesep.n_src"] == "2"


def test_parity_check_fails_when_the_graph_is_stale(tmp_path: Path) -> None:
    model = make("convtasnet-test").eval()
    path = export_onnx(model, tmp_path / "model.onnx", example_seconds=0.25)
    with torch.no_grad():
        model.decoder.weight.mul_(1.01)
    with pytest.raises(ParityError, match="T=3000"):
        check_parity(model, path, lengths=[3000])
    assert np.isfinite(check_parity(model, path, lengths=[3000], rtol=1.0, atol=1.0))


def _stream(model: Separator, mix: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Feed ``mix`` through ``step`` in chunks cycling through ``sizes``; concatenated output."""
    state = model.init_state(mix.shape[0], mix.shape[1])
    outs, start, i = [], 0, 0
    while start < mix.shape[-1]:
        n = sizes[i % len(sizes)]
        out, state = model.step(mix[..., start : start + n], state)
        assert out.shape[-1] == min(n, mix.shape[-1] - start)
        outs.append(out)
        start, i = start + n, i + 1
    return torch.cat(outs, dim=-1)


@pytest.mark.parametrize(("name", "overrides"), _causal_models(streaming=True))
def test_streaming_equals_offline_for_any_chunking(name: str, overrides: dict[str, object]) -> None:
    model = make(name, **overrides).eval()
    assert model.stream_delay == model.lookahead_samples
    hop, delay = model.stream_hop, model.stream_delay
    mix = noise(2, 1, 30 * hop + 17)
    with torch.no_grad():
        offline = model(mix)
    for sizes in ([hop], [1, 2 * hop + 3, 5], [7 * hop + 1]):
        streamed = _stream(model, mix, sizes)
        assert streamed.shape == offline.shape
        assert streamed[..., :delay].abs().max() == 0
        diff = (streamed[..., delay:] - offline[..., : mix.shape[-1] - delay]).abs().max()
        assert diff <= 1e-5, f"{name}: chunks {sizes}: max |stream - offline| {diff:.3g}"


def test_streaming_needs_a_causal_model() -> None:
    with pytest.raises(ValueError, match="causal"):
        make("convtasnet-test").init_state()


def test_export_folds_batchnorm_into_the_convs(tmp_path: Path) -> None:
    import onnx

    model = make("convtasnet-tiny-edge").eval()
    gen = torch.Generator().manual_seed(3)
    for module in model.modules():  # non-trivial statistics, so a wrong fold would show
        if isinstance(module, torch.nn.BatchNorm1d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.normal_(0.0, 0.5, generator=gen)
            module.running_var.uniform_(0.5, 2.0, generator=gen)
    path = export_onnx(model, tmp_path / "edge.onnx", example_seconds=0.25)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "BatchNormalization" not in ops and "ConvTranspose" not in ops and "PRelu" not in ops
    check_parity(model, path, lengths=[3001], rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()), "input untouched"


@pytest.mark.parametrize(
    ("name", "n_params"),
    [
        ("convtasnet-tiny", 455_793),
        ("sudormrf-small", 825_088),  # the paper's 0.25x model: "0.8 M" (Tzinis et al. 2020)
        ("sudormrf-tiny", 563_968),
        ("dprnn-small", 875_648),
        ("dprnn-tiny", 495_744),
        ("convtasnet-elastic-tiny", 461_937),  # its largest subnet: convtasnet-tiny, 5-tap convs
    ],
)
def test_named_config_sizes_are_exact(name: str, n_params: int) -> None:
    assert build(name).n_params() == n_params
