"""Lite U-Net specifics: frequency sizes through the levels, framing, causality, streaming core,
ONNX export of the offline graph and of the step graph, config validation.

The family-wide contract (shapes, gradients, safetensors, streaming via ``step``) is checked by
the conformance suite in test_models.py.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgesep.export import check_parity, export_onnx
from edgesep.models.liteunet import LiteUNet
from edgesep.models.zoo_registry import build


def make(name: str = "liteunet-test", seed: int = 0, **overrides: object) -> LiteUNet:
    torch.manual_seed(seed)
    model = build(name, **overrides)
    assert isinstance(model, LiteUNet)
    _randomise_norms(model, seed)
    return model.eval()


def _randomise_norms(model: nn.Module, seed: int) -> None:
    """BN at init is the identity at eval; give it trained-looking statistics so a BN that is
    mishandled (export, streaming) shows."""
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                assert mod.running_mean is not None and mod.running_var is not None
                n = mod.num_features
                mod.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
                mod.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
                mod.weight.copy_(0.5 + torch.rand(n, generator=gen))
                mod.bias.copy_(0.3 * torch.randn(n, generator=gen))


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class _OnesMask(nn.Module):
    """Stands in for the U-Net: a mask of ones everywhere, so the model is STFT -> iSTFT."""

    def __init__(self, n_src: int) -> None:
        super().__init__()
        self.n_src = n_src

    def forward(
        self, feat: torch.Tensor, caches: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        ones = torch.ones_like(feat).expand(-1, self.n_src, -1, -1)
        return ones, list(caches) if caches is not None else []

    def init_caches(self, n_batch: int, dtype: torch.dtype) -> list[torch.Tensor]:
        return []


def _stream_core(model: LiteUNet, x: torch.Tensor, hops: list[int]) -> torch.Tensor:
    """Feed (B, T) through ``step_core`` in chunks of ``hops`` hops (cycled); T % hop == 0."""
    state = model.init_core_state(x.shape[0])
    outs, start, i = [], 0, 0
    while start < x.shape[-1]:
        n = hops[i % len(hops)] * model.hop
        before = [s.clone() for s in state]
        y, new_state = model.step_core(x[:, start : start + n], state)
        assert all(torch.equal(a, b) for a, b in zip(before, state, strict=True)), "mutated"
        outs.append(y)
        state, start, i = new_state, start + n, i + 1
    return torch.cat(outs, dim=-1)


@pytest.mark.parametrize(
    ("n_fft", "hop", "stride", "n_levels"),
    [(64, 16, 2, 2), (96, 24, 2, 3), (128, 32, 4, 3), (256, 64, 4, 3), (400, 100, 3, 2)],
)
def test_frequency_sizes_through_the_levels(
    n_fft: int, hop: int, stride: int, n_levels: int
) -> None:
    model = make(n_fft=n_fft, hop=hop, freq_stride=stride, n_levels=n_levels)
    n_freq = n_fft // 2 + 1
    want = [math.ceil(n_freq / stride**lvl) for lvl in range(n_levels + 1)]
    assert model.masker.sizes == want
    feat = torch.rand(2, 1, n_freq, 9)
    with torch.no_grad():
        masks, _ = model.masker(feat)
    assert masks.shape == (2, model.n_src, n_freq, 9)
    for n_time in (1, 3 * hop + 5):
        with torch.no_grad():
            assert model(noise(1, 1, n_time)).shape == (1, model.n_src, 1, n_time)


@pytest.mark.parametrize("n_time", [1, 7, 16, 5 * 16 + 3, 1000])
def test_mask_of_ones_reconstructs_every_sample(n_time: int) -> None:
    # the framing (left pad, right pad to whole frames plus the overlap, crop) is exact: the
    # first and last samples are reconstructed as well as the middle ones
    model = make()
    model.masker = _OnesMask(model.n_src)
    mix = noise(2, 3, n_time)
    with torch.no_grad():
        out = model(mix)
    for s in range(model.n_src):
        torch.testing.assert_close(out[:, s], mix, rtol=0, atol=1e-5)


def test_mask_of_ones_streams_the_input_delayed() -> None:
    model = make(causal=True)
    model.masker = _OnesMask(model.n_src)
    x = noise(2, 20 * model.hop)
    with torch.no_grad():
        y = _stream_core(model, x, [1, 3])
    d = model.stream_core_delay
    torch.testing.assert_close(y[:, 0, d:], x[:, : x.shape[-1] - d], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("liteunet-test", {"causal": True}),
        ("liteunet-test", {"causal": True, "norm": "fLN"}),
        ("liteunet-8k-causal", {}),
    ],
)
def test_streaming_core_equals_offline_to_the_last_sample(
    name: str, overrides: dict[str, object]
) -> None:
    model = make(name, **overrides)
    hop, delay = model.hop, model.stream_core_delay
    assert model.stream_delay == model.lookahead_samples == model.config.n_fft - 2
    n_time = 24 * hop + 5
    mix = noise(2, 1, n_time)
    # flush with zeros: the core's output then covers the whole signal, its end included
    n_total = -(-(n_time + delay) // hop) * hop
    padded = torch.nn.functional.pad(mix[:, 0], (0, n_total - n_time))
    with torch.no_grad():
        offline = model(mix)[:, :, 0]
        for hops in ([1], [2, 5, 1]):
            streamed = _stream_core(model, padded, hops)[..., delay : delay + n_time]
            torch.testing.assert_close(streamed, offline, rtol=0, atol=1e-5)


def test_lookahead_is_tight_and_never_exceeded() -> None:
    # probe every offset within a hop: the worst case is one sample past a frame start, where
    # the newest frame's (sqrt-Hann) synthesis window is first non-zero
    model = make(causal=True)
    look, hop = model.lookahead_samples, model.hop
    mix = noise(1, 1, 60 * hop)
    reached = []
    with torch.no_grad():
        base = model(mix)
        for t in range(20 * hop, 21 * hop):
            later, at_edge = mix.clone(), mix.clone()
            # loud, because the edge sample is weighted by both windows' tails (~w[1]^2)
            later[..., t + look + 1 :] += 100 * noise(*later[..., t + look + 1 :].shape, seed=1)
            at_edge[..., t + look :] += 100 * noise(*at_edge[..., t + look :].shape, seed=1)
            torch.testing.assert_close(model(later)[..., : t + 1], base[..., : t + 1])
            reached.append(float((model(at_edge)[..., t] - base[..., t]).abs().max()))
    # one sample past a frame start the edge sample reaches the output; elsewhere the true
    # lookahead is shorter and the output is bit-for-bit unchanged
    assert reached[1] > 1e-4
    assert max(reached[:1] + reached[2:]) == 0


def test_causal_and_non_causal_differ_in_what_they_see() -> None:
    mix = noise(1, 1, 40 * 16)
    changed = mix.clone()
    changed[..., 400:] += 100 * noise(1, 1, 240, seed=3)
    outs = {}
    with torch.no_grad():
        for causal in (False, True):
            model = make(causal=causal)
            # no frame holding sample 400 reaches back past sample 336 (n_fft 64, hop 16):
            # only the U-Net's time context can carry the change there
            outs[causal] = (model(changed) - model(mix))[..., :336].abs().max()
    assert outs[True] <= 1e-6
    assert outs[False] > 1e-4  # the centred time convs see frames ahead


def test_non_causal_config_has_no_streaming_core() -> None:
    model = make()
    assert model.lookahead_samples == 0
    with pytest.raises(ValueError, match="causal"):
        model.init_core_state(1)
    with pytest.raises(ValueError, match="causal"):
        model.init_state()


def test_frame_layer_norm_gives_the_same_output_in_train_and_eval() -> None:
    # with BN (the default) training mode normalises with batch statistics and differs
    model = make(norm="fLN", causal=True)
    mix = noise(2, 1, 700)
    with torch.no_grad():
        eval_out = model(mix)
        train_out = model.train()(mix)
    torch.testing.assert_close(train_out, eval_out, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["liteunet-test", "liteunet-8k", "liteunet-8k-causal"])
def test_onnx_export_matches_eager_at_other_lengths(name: str, tmp_path: Path) -> None:
    model = make(name)
    path = export_onnx(model, tmp_path / "model.onnx", example_seconds=0.25)  # 2000 samples
    worst = check_parity(model, path, lengths=[1, 7, 777, 3001], rtol=1e-4, atol=1e-5)
    assert 0 <= worst <= 1e-5


class _StepGraph(nn.Module):
    def __init__(self, model: LiteUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, chunk: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, new_state = self.model.step_core(chunk, list(state))
        return (out, *new_state)


def test_step_core_exports_to_onnx_with_explicit_state(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = make(causal=True)
    names = model.core_state_names()
    state = model.init_core_state(2)
    assert len(names) == len(set(names)) == len(state)
    k = 2
    path = str(tmp_path / "step.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            _StepGraph(model).eval(),  # the exporter restores the wrapper's mode recursively
            (noise(2, k * model.hop), *state),
            path,
            input_names=["chunk", *names],
            output_names=["sources", *(f"{n}_out" for n in names)],
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = [s.numpy() for s in state]
    for i in range(12):
        chunk = noise(2, k * model.hop, seed=10 + i)
        with torch.no_grad():
            want, state = model.step_core(chunk, state)
        got = session.run(None, {"chunk": chunk.numpy(), **dict(zip(names, feeds, strict=True))})
        feeds = got[1:]
        np.testing.assert_allclose(got[0], want.numpy(), rtol=1e-4, atol=1e-5)
        for g, w in zip(got[1:], state, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)


def test_named_configs_are_edge_sized() -> None:
    for name in ("liteunet-8k", "liteunet-8k-causal", "liteunet-music"):
        model = build(name)
        assert 10_000 <= model.n_params() <= 400_000, name
        assert 4 <= model.config.n_filters <= 16
    music = build("liteunet-music")
    assert music.source_names == ("vocals", "drums", "bass", "other")
    assert music.sample_rate == 44100


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hop": 24}, "multiple of hop"),
        ({"hop": 64}, "twice"),
        ({"freq_stride": 1}, "freq_stride"),
        ({"n_levels": 0}, "n_levels"),
        ({"norm": "gLN"}, "norm"),
        ({"act": "tanh"}, "act"),
        ({"mask_act": "softmax"}, "mask_act"),
        ({"source_names": ("a", "b", "c")}, "n_src"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build("liteunet-test", **overrides)


def test_converts_to_double_precision() -> None:
    model = make(causal=True).double()
    assert model(noise(1, 1, 100).double()).dtype == torch.float64
    assert all(s.dtype == torch.float64 for s in model.init_core_state(1))
