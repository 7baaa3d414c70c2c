"""edgesep.runtime: torch-free loading, streaming and offline separation on ONNX Runtime, held
to the PyTorch models the graphs were exported from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from edgesep.export import export_onnx, export_step_onnx
from edgesep.models.apply import separate_file
from edgesep.models.base import Separator as TorchSeparator
from edgesep.models.zoo_registry import build
from edgesep.runtime import Model, ModelLoadError, OfflineSession, StreamingSession

SRC = Path(__file__).resolve().parents[1] / "src"
# small causal models: cumulative LN (the zoo's causal Conv-TasNet) and the edge variant
# (BatchNorm folded at export, ReLU, overlap-add decoder), both at test size
CAUSAL = {
    "cln": {"causal": True, "norm": "cLN"},
    "edge": {"causal": True, "norm": "BN", "act": "relu", "decoder": "ola"},
}
PUSH_SIZES = ([1], [7, 13, 1], [997], [5000])


def make(overrides: dict[str, object], seed: int = 0) -> TorchSeparator:
    torch.manual_seed(seed)
    model: TorchSeparator = build("convtasnet-test", **overrides)
    if "BN" in overrides.values():  # give BatchNorm non-trivial statistics to fold
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return model.eval()


def noise(n: int, n_chan: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.05 * rng.standard_normal((n_chan, n))).astype(np.float32)


def offline(model: TorchSeparator, x: np.ndarray) -> np.ndarray:
    """The torch model on (C, n). Shape: -> (S, C, n)."""
    with torch.no_grad():
        return model(torch.from_numpy(x)[None])[0].numpy()


def stream(session: StreamingSession, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Push (C, n) in chunks cycling through ``sizes``, then flush; (S, C, n + delay)."""
    outs, start, i = [], 0, 0
    while start < x.shape[-1]:
        piece = x[:, start : start + sizes[i % len(sizes)]]
        out = session.push(piece)
        assert out.shape == (session.n_src, x.shape[0], piece.shape[-1])
        outs.append(out)
        start, i = start + piece.shape[-1], i + 1
    outs.append(session.flush())
    return np.concatenate(outs, axis=-1)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[TorchSeparator, Path]]:
    """Each causal model with its dynamic-length step graph, and one with a fixed 3-hop graph."""
    root = tmp_path_factory.mktemp("graphs")
    out: dict[str, tuple[TorchSeparator, Path]] = {}
    for name, overrides in CAUSAL.items():
        model = make(overrides)
        out[name] = (model, export_step_onnx(model, root / f"{name}.onnx", 2, dynamic=True))
    model = out["edge"][0]
    out["edge-fixed"] = (model, export_step_onnx(model, root / "edge-fixed.onnx", 3))
    return out


def test_import_loads_no_torch() -> None:
    code = (
        "import sys, edgesep.runtime\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print(len(bad), bad[:3])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert res.stdout.startswith("0 "), res.stdout + res.stderr


@pytest.mark.parametrize("name", ["cln", "edge", "edge-fixed"])
@pytest.mark.parametrize("sizes", PUSH_SIZES)
def test_stream_equals_offline_causal_model(
    graphs: dict[str, tuple[TorchSeparator, Path]], name: str, sizes: list[int]
) -> None:
    model, path = graphs[name]
    session = StreamingSession(path, rescale=False)
    hop = model.stream_hop
    k = 3 if name == "edge-fixed" else 2
    assert session.delay == model.stream_core_delay + k * hop - 1
    x = noise(40 * hop + 5, seed=len(sizes))
    got = stream(session, x, sizes)
    d = session.delay
    assert got.shape == (2, 1, x.shape[-1] + d)
    assert np.abs(got[..., :d]).max() == 0  # nothing before t=0
    # the stream, flushed with zeros, is the offline model on the input followed by zeros...
    padded = np.concatenate([x, np.zeros((1, d), np.float32)], axis=-1)
    np.testing.assert_allclose(got[..., d:], offline(model, padded)[..., : x.shape[-1]], atol=1e-4)
    # ... and the offline model on the input alone everywhere but in the last two hops, where
    # the offline model has no frame past the input's end and the stream cannot know it ended
    want = offline(model, x)
    edge = x.shape[-1] // hop * hop - hop
    assert np.abs(got[..., d : d + edge] - want[..., :edge]).max() <= 1e-4


@pytest.mark.parametrize("name", ["cln", "edge-fixed"])
def test_aligned_session_has_the_core_delay_and_the_same_output(
    graphs: dict[str, tuple[TorchSeparator, Path]], name: str
) -> None:
    """Whole calls only: the delay drops to the core's own, and the output is the same offline
    output, ``k * hop - 1`` samples sooner; a partial call is refused."""
    model, path = graphs[name]
    session = StreamingSession(path, aligned=True, rescale=False)
    step = session.step_samples
    assert session.delay == model.stream_core_delay < StreamingSession(path, rescale=False).delay
    x = noise(20 * step, n_chan=1, seed=3)
    got = stream(session, x, [step, 3 * step, 2 * step])
    d = session.delay
    assert got.shape == (2, 1, x.shape[-1] + d) and np.abs(got[..., :d]).max() == 0
    padded = np.concatenate([x, np.zeros((1, step), np.float32)], axis=-1)
    np.testing.assert_allclose(got[..., d:], offline(model, padded)[..., : x.shape[-1]], atol=1e-4)
    with pytest.raises(ValueError, match=f"multiple of {step}"):
        StreamingSession(path, aligned=True, rescale=False).push(x[:, : step + 1])


def test_hops_per_step_of_a_dynamic_graph_is_free(
    graphs: dict[str, tuple[TorchSeparator, Path]],
) -> None:
    model, path = graphs["edge"]
    loaded = Model(path)
    x = noise(30 * model.stream_hop + 3, n_chan=2, seed=5)  # stereo: one state per channel
    ref = None
    for k in (1, 4):
        s = StreamingSession(loaded, n_channels=2, hops_per_step=k, rescale=False)
        assert s.delay == model.stream_core_delay + k * model.stream_hop - 1
        got = stream(s, x, [11, 150])[..., s.delay :]
        # whole steps only; a push holding several steps runs them in one call
        assert all(h % k == 0 for h in s.call_hops) and max(s.call_hops) > k
        ref = got if ref is None else ref
        np.testing.assert_allclose(got, ref, atol=1e-5)
    with pytest.raises(ValueError, match="exactly 3"):
        StreamingSession(graphs["edge-fixed"][1], hops_per_step=2, rescale=False)


def test_every_call_costs_the_same_input(graphs: dict[str, tuple[TorchSeparator, Path]]) -> None:
    """Stateful: each call sees only its own hops, however long the stream has run."""
    model, path = graphs["edge"]
    s = StreamingSession(path, hops_per_step=2, rescale=False)
    for _ in range(50):
        s.push(noise(2 * model.stream_hop))
    assert set(s.call_hops) == {2} and len(s.call_hops) == 50


def test_int8_stream_matches_int8_offline(
    graphs: dict[str, tuple[TorchSeparator, Path]], tmp_path: Path
) -> None:
    from edgesep.export.stream_int8 import quantize_step_int8
    from edgesep.metrics.sisnr import si_snr

    model, path = graphs["edge"]
    calib = [noise(64 * model.stream_hop, seed=s)[0] for s in range(3)]
    q_path = quantize_step_int8(path, tmp_path / "int8.onnx", calib)
    q = Model(q_path)
    assert any(n.op_type == "DequantizeLinear" for n in _nodes(q_path))
    x = noise(50 * model.stream_hop + 9, seed=11)
    s = StreamingSession(q, rescale=False)
    got = stream(s, x, [1, 37, 200])[..., s.delay :]
    want = q.run_offline(x)
    snr = si_snr(torch.from_numpy(got[:, 0]), torch.from_numpy(want[:, 0]))
    assert float(snr.min()) >= 40.0
    # and it is a different computation from fp32 (quantized), not the fp32 graph again
    assert np.abs(want - Model(path).run_offline(x)).max() > 1e-5


def _nodes(path: Path) -> list[object]:
    import onnx

    return list(onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_offline_separator_equals_torch_separate(tmp_path: Path, rate: int) -> None:
    model = make({})  # non-causal, gLN
    path = export_onnx(model, tmp_path / "off.onnx", example_seconds=0.5)
    sep = OfflineSession(path, chunk_seconds=0.5, overlap_seconds=0.1)
    x = noise(int(1.3 * rate) + 7, n_chan=2, seed=rate)
    got = sep.separate(x, rate)
    want = model.separate(x, rate, chunk_seconds=0.5, overlap_seconds=0.1)
    assert got.shape == want.shape == (2, 2, x.shape[-1])
    np.testing.assert_allclose(got, want, atol=1e-4)
    mono = sep.separate(x[0], rate)
    np.testing.assert_allclose(mono, got[:, 0], atol=1e-5)


def test_step_graph_separates_offline_like_torch(
    graphs: dict[str, tuple[TorchSeparator, Path]],
) -> None:
    """A step graph computes each chunk from the zero state: torch's chunked separation, but
    for the last hop of the signal (see the streaming test)."""
    model, path = graphs["cln"]
    x = noise(9000, seed=2)[0]
    got = OfflineSession(path, chunk_seconds=0.4, overlap_seconds=0.1, rescale=False).separate(
        x, 8000
    )
    want = model.separate(x, 8000, chunk_seconds=0.4, overlap_seconds=0.1, rescale=False)
    last = 9000 // model.stream_hop * model.stream_hop - model.stream_hop
    assert np.abs(got[:, :last] - want[:, :last]).max() <= 1e-4
    # the same options per call, as Separator.separate takes them, override the session's
    per_call = OfflineSession(path).separate(
        x, 8000, chunk_seconds=0.4, overlap_seconds=0.1, rescale=False
    )
    np.testing.assert_array_equal(per_call, got)


def test_separate_file_matches_torch_and_keeps_format(tmp_path: Path) -> None:
    model = make({})
    path = export_onnx(model, tmp_path / "off.onnx", example_seconds=0.5)
    wav = tmp_path / "in.wav"
    sf.write(wav, noise(20000, n_chan=2, seed=4).T * 4, 11025, subtype="PCM_16")
    got = OfflineSession(path, chunk_seconds=0.5, overlap_seconds=0.1).separate_file(
        wav, tmp_path / "rt", block_seconds=0.3
    )
    want = separate_file(model, wav, tmp_path / "pt", 0.5, 0.1, block_seconds=0.7)
    assert list(got) == ["s1", "s2"]
    for name in got:
        a, sr = sf.read(got[name], dtype="float32")
        b, _ = sf.read(want[name], dtype="float32")
        assert sr == 11025 and a.shape == b.shape == (20000, 2)
        assert np.abs(a - b).max() <= 2 / 32768  # the same, up to a PCM_16 rounding step


def test_bad_inputs_fail_clearly(
    graphs: dict[str, tuple[TorchSeparator, Path]], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=r"junk\.onnx: not a loadable ONNX"):
        Model(junk)
    with pytest.raises(ModelLoadError, match="no ONNX model found"):
        Model("no-such-model")
    off = export_onnx(make({}), tmp_path / "off.onnx", example_seconds=0.25)
    with pytest.raises(ValueError, match="cannot stream"):
        StreamingSession(off, rescale=False)
    s = StreamingSession(graphs["edge"][1], rescale=False)
    with pytest.raises(ValueError, match="shape"):
        s.push(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        s.push(np.full(5, np.nan, np.float32))
    s.flush()
    with pytest.raises(RuntimeError, match="after flush"):
        s.push(np.zeros(3, np.float32))


def test_a_session_rescales_by_default_with_the_causal_gains(
    graphs: dict[str, tuple[TorchSeparator, Path]],
) -> None:
    """rescale=True (the default, as in separate and stream) = CausalRescaler on the raw stream,
    fed the input delayed to line up with each output block."""
    from edgesep.runtime.level import CausalRescaler

    _, path = graphs["cln"]
    raw_s, res_s = StreamingSession(path, rescale=False), StreamingSession(path)
    assert res_s.rescaler is not None and raw_s.rescaler is None
    x = noise(6000, seed=5)[0]
    rescaler = CausalRescaler(raw_s.n_src, 1, raw_s.sample_rate)
    delayed = np.concatenate([np.zeros(raw_s.delay, np.float32), x])
    pos = 0
    for n in (700, 1, 2300, 3000 - 1):
        raw, got = raw_s.push(x[pos : pos + n]), res_s.push(x[pos : pos + n])
        want = rescaler.process(raw[:, None], delayed[None, pos : pos + n])[:, 0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        pos += n
    assert not np.allclose(got, raw)  # the gains did something
