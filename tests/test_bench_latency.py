"""Latency measurement: the summary statistics, the call counting, thread and mode hygiene, and
that a streaming step graph is timed as a real stream (its state carried from call to call)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edgesep.bench import latency
from edgesep.bench.latency import (
    Timing,
    is_step_graph,
    ort_chunk_timing,
    ort_session,
    real_time_factor,
    time_calls,
    timing_from_seconds,
    torch_chunk_timing,
    torch_step_timing,
)
from edgesep.export.onnx import export_onnx
from edgesep.export.streaming import CHUNK_NAME, export_step_onnx
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build


def causal_model() -> Separator:
    return build("convtasnet-test", causal=True, norm="cLN").eval()


@pytest.fixture(scope="module")
def offline_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(build("convtasnet-test"), tmp_path_factory.mktemp("lat") / "off.onnx")


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory) -> tuple[Separator, Path]:
    """A causal model (random weights) and its step graph, 2 hops per step."""
    model = causal_model()
    return model, export_step_onnx(model, tmp_path_factory.mktemp("lat") / "step.onnx", 2)


@pytest.fixture(scope="module")
def step_onnx(streaming: tuple[Separator, Path]) -> Path:
    return streaming[1]


def test_percentiles_of_a_known_sample() -> None:
    # 1, 2, 3, 4 s: linear interpolation puts p50 at 2.5 s, p95 at 1 + 0.95 * 3 = 3.85 s
    t = timing_from_seconds([4.0, 1.0, 3.0, 2.0])
    assert (t.p50_ms, t.p95_ms, t.p99_ms) == pytest.approx((2500.0, 3850.0, 3970.0))
    assert (t.mean_ms, t.min_ms, t.max_ms, t.n_runs) == pytest.approx((2500.0, 1000.0, 4000.0, 4))


def test_percentiles_match_numpy_and_are_ordered() -> None:
    samples = [0.0031, 0.0012, 0.0104, 0.0023, 0.0050, 0.0041, 0.0207, 0.0019, 0.0033]
    t = timing_from_seconds(samples)
    ms = np.array(samples) * 1000
    want = [np.percentile(ms, q) for q in (50, 95, 99)]
    assert [t.p50_ms, t.p95_ms, t.p99_ms] == pytest.approx(want)
    assert t.mean_ms == pytest.approx(ms.mean())
    assert t.min_ms <= t.p50_ms <= t.p95_ms <= t.p99_ms <= t.max_ms == pytest.approx(20.7)
    d = t.to_dict()
    assert set(d) == {"p50_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "max_ms", "n_runs"}
    assert d["n_runs"] == 9 and isinstance(d["n_runs"], int)
    assert all(v == round(v, 4) for v in d.values())
    with pytest.raises(ValueError, match="at least one"):
        timing_from_seconds([])


def test_time_calls_calls_warmup_plus_runs() -> None:
    calls: list[int] = []
    t = time_calls(lambda: calls.append(1), n_warmup=2, n_runs=5)
    assert len(calls) == 7 and t.n_runs == 5
    with pytest.raises(ValueError, match="n_runs"):
        time_calls(lambda: None, n_runs=0)


def test_a_sleeping_call_takes_at_least_its_sleep() -> None:
    t = time_calls(lambda: time.sleep(0.002), n_warmup=0, n_runs=3)
    assert t.min_ms >= 2.0 and t.p50_ms >= 2.0  # lower bounds only: the machine may be busy
    rtf = real_time_factor(lambda: time.sleep(0.002), audio_seconds=0.001, n_warmup=0, n_runs=3)
    assert rtf["n_runs"] == 3 and 2.0 <= rtf["min"] <= rtf["median"] <= rtf["max"]
    with pytest.raises(ValueError, match="audio_seconds"):
        real_time_factor(lambda: None, audio_seconds=0)


def test_ort_offline_timing(offline_onnx: Path) -> None:
    assert not is_step_graph(ort_session(offline_onnx))
    t = ort_chunk_timing(offline_onnx, 800, n_warmup=1, n_runs=4)
    assert isinstance(t, Timing) and t.n_runs == 4 and t.min_ms > 0
    for bad in ({"n_time": 0}, {"n_time": 8, "threads": 0}, {"n_time": 8, "n_runs": 0}):
        with pytest.raises(ValueError):
            ort_chunk_timing(offline_onnx, **bad)


def test_ort_step_timing(step_onnx: Path) -> None:
    assert is_step_graph(ort_session(step_onnx))
    t = ort_chunk_timing(step_onnx, n_time=10**9, n_warmup=1, n_runs=4)  # n_time is ignored
    assert t.n_runs == 4 and t.min_ms > 0


class RecordingSession:
    """An ONNX Runtime session that records every run's feeds and outputs."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.calls: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def run(self, fetch: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = self.session.run(fetch, feeds)
        self.calls.append((dict(feeds), dict(zip(fetch, out, strict=True))))
        return out


def test_step_timing_carries_the_state(
    streaming: tuple[Separator, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, step_onnx = streaming
    sessions: list[RecordingSession] = []

    def recording(path: Any, threads: int = 1) -> RecordingSession:
        sessions.append(RecordingSession(ort_session(path, threads)))
        return sessions[-1]

    monkeypatch.setattr(latency, "ort_session", recording)
    ort_chunk_timing(step_onnx, 1, n_warmup=2, n_runs=6)
    calls = sessions[0].calls
    assert len(calls) == 8
    names = [n for n in calls[0][0] if n != CHUNK_NAME]
    assert names and all(not calls[0][0][n].any() for n in names)  # zeros at the start
    for (_, prev_out), (feeds, _) in itertools.pairwise(calls):
        for n in names:
            np.testing.assert_array_equal(feeds[n], prev_out[f"{n}_out"])
    assert any(calls[-1][0][n].any() for n in names)  # so the carry above is not vacuous
    # and carrying it is right: torch's step_core on the same chunks gives the same sources
    state = model.init_core_state(1)
    with torch.no_grad():
        for feeds, out in calls:
            want, state = model.step_core(torch.from_numpy(feeds[CHUNK_NAME]), state)
            np.testing.assert_allclose(out["sources"], want.numpy(), rtol=1e-4, atol=1e-5)


def test_chunk_name_matches_the_exporter() -> None:
    # the torch-free probe keeps its own copy of the name
    from edgesep.bench import memprobe

    assert memprobe.CHUNK_NAME == CHUNK_NAME


class Spy(nn.Module):
    """Records the thread count and train mode each forward sees; optionally fails."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.seen: list[tuple[int, bool, bool]] = []

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.seen.append(
            (torch.get_num_threads(), self.training, torch.is_inference_mode_enabled())
        )
        if self.fail:
            raise RuntimeError("boom")
        return mix


def test_torch_timing_sets_and_restores_threads_and_mode() -> None:
    before = torch.get_num_threads()
    spy = Spy().train()
    t = torch_chunk_timing(spy, 16, threads=before + 1, n_warmup=1, n_runs=2)  # type: ignore[arg-type]
    assert t.n_runs == 2 and spy.seen == [(before + 1, False, True)] * 3
    assert torch.get_num_threads() == before and spy.training
    with pytest.raises(RuntimeError, match="boom"):
        torch_chunk_timing(Spy(fail=True), 16, threads=before + 1)  # type: ignore[arg-type]
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        torch_chunk_timing(spy, 16, threads=0)  # type: ignore[arg-type]


def test_torch_chunk_and_step_timing_on_real_models() -> None:
    before = torch.get_num_threads()
    assert torch_chunk_timing(build("convtasnet-test"), 800, n_warmup=1, n_runs=3).n_runs == 3
    t = torch_step_timing(causal_model(), hops_per_step=2, n_warmup=1, n_runs=3)
    assert t.n_runs == 3 and t.min_ms > 0
    assert torch.get_num_threads() == before


def test_step_timing_needs_a_causal_model() -> None:
    with pytest.raises(ValueError, match="causal"):
        torch_step_timing(build("convtasnet-test"))
