"""Band-Split RNN: band layouts, complex masking, causality, the streaming core and ONNX export.

The family-independent contract (shapes, gradients, round trips) is in test_models.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgesep.export import check_parity, export_onnx
from edgesep.models.bsrnn import BSRNN, BSRNNConfig
from edgesep.models.zoo_registry import build
from edgesep.nn.bandsplit import apply_complex_mask, band_widths_from_hz, check_band_widths


def make(name: str, seed: int = 0, **overrides: object) -> BSRNN:
    torch.manual_seed(seed)
    model = build(name, **overrides)
    assert isinstance(model, BSRNN)
    return model.eval()


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- band layouts -------------------------------------------------------------------------------
def test_speech_bands_at_8k_are_narrow_low_and_wide_high() -> None:
    # 31.25 Hz bins: 125 Hz bands are 4 bins up to 1 kHz, then 8 to 2 kHz, then 16 to 4 kHz;
    # the Nyquist bin joins the last band instead of forming one of its own
    widths = build("bsrnn-8k").config.widths()
    assert widths == (4,) * 8 + (8,) * 4 + (16, 16, 16, 17)


@pytest.mark.parametrize(("sample_rate", "n_fft"), [(8000, 256), (16000, 512), (44100, 2048)])
def test_hz_splits_always_tile_the_spectrum(sample_rate: int, n_fft: int) -> None:
    splits = ((500.0, 100.0), (2000.0, 250.0), (4000.0, 500.0), (16000.0, 2000.0))
    widths = band_widths_from_hz(sample_rate, n_fft, splits)
    assert sum(widths) == n_fft // 2 + 1 and min(widths) >= 1
    assert check_band_widths(widths, n_fft // 2 + 1) == widths


@pytest.mark.parametrize(
    ("widths", "message"),
    [((2, 2, 4, 8, 16), "tile the 33 frequency bins"), ((2, 0, 4, 8, 19), "positive")],
)
def test_band_widths_that_do_not_tile_are_rejected(widths: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_band_widths(widths, 33)
    with pytest.raises(ValueError, match=message):
        build("bsrnn-test", band_widths=widths)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"band_hz": ((1000.0, 100.0), (500.0, 250.0))}, "increasing upper edges"),
        ({"band_hz": ((1000.0, 0.0),)}, "positive widths"),
        ({"hop": 48}, "must divide"),
        ({"hop": 64}, "at least twice"),
        ({"rnn_type": "transformer"}, "gru or lstm"),
        ({"source_names": ("a", "b", "c")}, "n_src"),
    ],
)
def test_config_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build("bsrnn-test", band_widths=(), **overrides)


def test_a_changed_fft_size_keeps_hz_bands_valid() -> None:
    model = build("bsrnn-8k", n_fft=512, hop=128)
    assert sum(model.widths) == 257 and model.lookahead_samples == 0


# -- sizes --------------------------------------------------------------------------------------
def test_param_counts_are_edge_sized() -> None:
    counts = {name: build(name).n_params() for name in ("bsrnn-8k", "bsrnn-16k", "bsrnn-test")}
    assert 150_000 <= counts["bsrnn-8k"] <= 500_000
    assert 150_000 <= counts["bsrnn-16k"] <= 500_000
    assert counts["bsrnn-test"] <= 20_000
    music = build("bsrnn-music")
    assert music.n_params() <= 2_000_000
    assert music.source_names == ("vocals", "drums", "bass", "other")
    # a unidirectional time RNN has half the weights of a bidirectional one
    assert build("bsrnn-8k-causal").n_params() < counts["bsrnn-8k"]


def test_gru_block_count_matches_the_formula() -> None:
    c = BSRNNConfig(n_fft=64, hop=16, band_widths=(2, 2, 4, 8, 17), feature_dim=8, hidden=6)
    model = BSRNN(c)
    d, h = c.feature_dim, c.hidden
    gru = 3 * (d * h + h * h + 2 * h)  # one direction: input, recurrent weights and biases
    residual_rnn = 2 * d + 2 * gru + (2 * h * d + d)  # norm, bidirectional GRU, projection
    assert sum(p.numel() for p in model.blocks[0].parameters()) == 2 * residual_rnn


# -- complex masking ----------------------------------------------------------------------------
def test_complex_mask_is_complex_multiplication() -> None:
    m_re, m_im = noise(2, 3, 5, 4, seed=1), noise(2, 3, 5, 4, seed=2)
    x_re, x_im = noise(2, 5, 4, seed=3), noise(2, 5, 4, seed=4)
    y_re, y_im = apply_complex_mask(m_re, m_im, x_re, x_im)
    want = torch.complex(m_re, m_im) * torch.complex(x_re, x_im).unsqueeze(1)
    torch.testing.assert_close(y_re, want.real)
    torch.testing.assert_close(y_im, want.imag)


class ConstantMask(nn.Module):
    """Stands in for the mask estimator: the same complex mask for every source and bin."""

    def __init__(self, n_src: int, n_freq: int, value: complex) -> None:
        super().__init__()
        self.n_src, self.n_freq, self.value = n_src, n_freq, value

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (z.shape[0], self.n_src, self.n_freq, z.shape[2])
        return torch.full(shape, self.value.real), torch.full(shape, self.value.imag)


@pytest.mark.parametrize("n_time", [1, 7, 16, 1001])
@pytest.mark.parametrize("causal", [False, True])
def test_unit_mask_reconstructs_the_input(n_time: int, causal: bool) -> None:
    # with mask 1 + 0j the whole framing (pads, STFT, iSTFT, crop) must be an identity
    model = make("bsrnn-test", causal=causal)
    model.mask = ConstantMask(model.n_src, model.stft.n_freq, 1 + 0j)
    mix = noise(2, 3, n_time)
    with torch.no_grad():
        out = model(mix)
    for s in range(model.n_src):
        torch.testing.assert_close(out[:, s], mix, rtol=0, atol=1e-5)
    # and mask 0.5 - 0j halves it: the mask is applied, not bypassed
    model.mask = ConstantMask(model.n_src, model.stft.n_freq, 0.5 + 0j)
    with torch.no_grad():
        torch.testing.assert_close(model(mix)[:, 0], 0.5 * mix, rtol=0, atol=1e-5)


# -- causality ----------------------------------------------------------------------------------
def _perturb_after(mix: torch.Tensor, start: int) -> torch.Tensor:
    changed = mix.clone()
    changed[..., start:] += noise(*changed[..., start:].shape, seed=7)
    return changed


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_causal_lookahead_is_exact(rnn_type: str) -> None:
    model = make("bsrnn-test", causal=True, rnn_type=rnn_type)
    look, hop = model.lookahead_samples, model.hop
    assert look == model.config.n_fft - 2 == model.stream_delay
    # t = 1 (mod hop): its last frame starts at t - 1 and ends at t + n_fft - 2 = t + lookahead
    t = 20 * hop + 1
    mix = noise(1, 1, t + look + 300)
    with torch.no_grad():
        base = model(mix)
        later = model(_perturb_after(mix, t + look + 1))
        at_edge = model(_perturb_after(mix, t + look))
    assert torch.equal(later[..., : t + 1], base[..., : t + 1])
    assert (at_edge[..., t] - base[..., t]).abs().max() > 1e-7


def test_non_causal_model_sees_the_future() -> None:
    model = make("bsrnn-test")
    mix = noise(1, 1, 1500)
    with torch.no_grad():
        base, later = model(mix), model(_perturb_after(mix, 800))
    # the bidirectional time RNNs carry the change back beyond the frames that hold it
    assert (later[..., :700] - base[..., :700]).abs().max() > 1e-5


# -- streaming core -----------------------------------------------------------------------------
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("hops_per_call", [1, 3])
def test_step_core_equals_offline_delayed(rnn_type: str, hops_per_call: int) -> None:
    model = make("bsrnn-test", causal=True, rnn_type=rnn_type)
    hop, delay = model.stream_hop, model.stream_core_delay
    n = 12 * 3 * hop
    mix = noise(2, 1, n + 5)
    state = model.init_core_state(2)
    assert len(model.core_state_names()) == len(state) == len(set(model.core_state_names()))
    outs = []
    with torch.no_grad():
        offline = model(mix)
        for start in range(0, n, hops_per_call * hop):
            before = [s.clone() for s in state]
            y, new_state = model.step_core(mix[:, 0, start : start + hops_per_call * hop], state)
            assert all(torch.equal(a, b) for a, b in zip(before, state, strict=True))
            assert [s.shape for s in new_state] == [s.shape for s in state]
            outs.append(y)
            state = new_state
    streamed = torch.cat(outs, dim=-1)
    assert streamed.shape == (2, model.n_src, n)
    torch.testing.assert_close(
        streamed[..., delay:], offline[:, :, 0, : n - delay], rtol=0, atol=1e-5
    )


def test_non_causal_model_has_no_streaming_core() -> None:
    with pytest.raises(ValueError, match="causal"):
        make("bsrnn-test").step_core(torch.zeros(1, 16), [])


# -- ONNX ---------------------------------------------------------------------------------------
# the exporter's notes on GRU batch sizes (the initial state is built in-graph, so any batch
# works, as the parity checks show), un-foldable strided slices, and torch's RNN shape checks
quiet_export = pytest.mark.filterwarnings(
    "ignore:Exporting a model to ONNX with a batch_size",
    "ignore:Constant folding",
    "ignore::torch.jit.TracerWarning",
)


@quiet_export
@pytest.mark.parametrize("name", ["bsrnn-test", "bsrnn-8k", "bsrnn-8k-causal"])
def test_onnx_export_matches_eager_at_other_lengths(name: str, tmp_path: Path) -> None:
    model = make(name)
    # traced at half a second; the other lengths prove the pads and crops stayed dynamic
    path = export_onnx(model, tmp_path / "model.onnx", example_seconds=0.5)
    worst = check_parity(model, path, lengths=[1, 7, 1001, 5555], rtol=1e-4, atol=1e-5)
    assert 0 <= worst <= 1e-5


class _Step(nn.Module):
    def __init__(self, model: BSRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, chunk: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, new_state = self.model.step_core(chunk, list(state))
        return (out, *new_state)


@quiet_export
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_step_core_exports_to_onnx_with_explicit_state(rnn_type: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    model = make("bsrnn-test", causal=True, rnn_type=rnn_type)
    names = model.core_state_names()
    state = model.init_core_state(2)
    chunks = noise(6, 2, 2 * model.stream_hop, seed=3)  # six calls of two hops each
    path = tmp_path / "step.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            _Step(model),
            (chunks[0], *state),
            str(path),
            input_names=["chunk", *names],
            output_names=["sources", *(f"{n}_out" for n in names)],
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = [s.numpy() for s in state]
    for chunk in chunks:
        with torch.no_grad():
            want, state = model.step_core(chunk, state)
        got = session.run(None, {"chunk": chunk.numpy(), **dict(zip(names, feeds, strict=True))})
        feeds = got[1:]
        np.testing.assert_allclose(got[0], want.numpy(), rtol=1e-4, atol=1e-5)
        for g, w in zip(got[1:], state, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)
