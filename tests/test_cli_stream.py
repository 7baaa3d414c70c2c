"""``edgesep stream`` and the real-time runner: aligned outputs, stdin PCM, deadlines, errors."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.export import export_onnx, export_step_onnx
from edgesep.models.artifact import save_artifact
from edgesep.models.base import Separator as TorchSeparator
from edgesep.models.zoo_registry import build
from edgesep.runtime import StreamingSession
from edgesep.runtime.realtime import RealtimeRunner

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _invoke(*args: str | Path, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env=ENV, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _causal() -> TorchSeparator:
    torch.manual_seed(0)
    model: TorchSeparator = build("convtasnet-test", causal=True, norm="cLN")
    return model.eval()


@pytest.fixture(scope="module")
def step_graph(tmp_path_factory: pytest.TempPathFactory) -> tuple[TorchSeparator, Path]:
    model = _causal()
    path = tmp_path_factory.mktemp("g") / "step.onnx"
    return model, export_step_onnx(model, path, hops_per_step=2, dynamic=True)


def _mix(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _aligned_stream(path: Path, x: np.ndarray) -> np.ndarray:
    s = StreamingSession(path, rescale=False)
    y = np.concatenate([s.push(x), s.flush()], axis=-1)
    return y[:, s.delay :]


def test_file_is_streamed_to_aligned_sources(
    step_graph: tuple[TorchSeparator, Path], tmp_path: Path
) -> None:
    _, path = step_graph
    x = _mix(3001)
    wav = tmp_path / "talk.wav"
    sf.write(wav, x, 8000, subtype="FLOAT")
    rep = tmp_path / "r.json"
    code, stdout, stderr = _invoke(
        "stream", wav, "--model", path, "--no-pace", "--no-rescale", "-o", tmp_path / "o",
        "--report", rep, "--deadline-ms", "5", "--unaligned",
    )  # fmt: skip
    assert code == 0, stderr
    assert "deadline misses" in stdout and "algorithmic latency" in stdout
    assert "misses at other deadlines" in stdout and "playback latency" in stdout
    want = _aligned_stream(path, x)
    for i, name in enumerate(("s1", "s2")):
        got, sr = sf.read(tmp_path / "o" / "talk" / f"{name}.wav", dtype="float32")
        assert sr == 8000 and got.shape == (3001,)
        np.testing.assert_allclose(got, want[i], atol=1e-6)
    summary = json.loads(rep.read_text())
    assert summary["paced"] is False and summary["n_blocks"] == -(-3001 // 16)
    assert summary["audio_seconds"] == pytest.approx(3001 / 8000, abs=1e-4)
    assert summary["deadline_ms"] == 5.0 and set(summary["misses_by_deadline_ms"]) >= {"8"}
    delay_ms = (
        1000 * StreamingSession(path, rescale=False).delay / 8000
    )  # + a 2-ms block + the deadline
    assert summary["playback_latency_ms"] == pytest.approx(delay_ms + 2.0 + 5.0)


def test_aligned_stream_writes_the_same_sources_with_the_core_delay(
    step_graph: tuple[TorchSeparator, Path], tmp_path: Path
) -> None:
    """Blocks of whole calls (the default) stream aligned: the last block padded, the core's
    delay, a deadline of two blocks, and the same written sources as unaligned, cut to the
    input's length. Blocks that are not whole calls stream unaligned, unless --aligned asks."""
    model, path = step_graph
    x = _mix(3001)  # not a whole number of 16-sample calls: the last block is padded
    wav = tmp_path / "talk.wav"
    sf.write(wav, x, 8000, subtype="FLOAT")
    rep = tmp_path / "r.json"
    code, _, stderr = _invoke(
        "stream", wav, "--model", path, "--no-pace", "--no-rescale", "-o", tmp_path / "o",
        "--report", rep,
    )  # fmt: skip
    assert code == 0, stderr
    want = _aligned_stream(path, x)
    for i, name in enumerate(("s1", "s2")):
        got, _ = sf.read(tmp_path / "o" / "talk" / f"{name}.wav", dtype="float32")
        assert got.shape == (3001,)
        np.testing.assert_allclose(got, want[i], atol=1e-6)
    summary = json.loads(rep.read_text())
    core_ms = 1000 * model.stream_core_delay / 8000
    assert summary["algorithmic_latency_ms"] == pytest.approx(core_ms)
    assert summary["deadline_ms"] == pytest.approx(4.0)  # two 2-ms blocks
    assert summary["playback_latency_ms"] == pytest.approx(core_ms + 2.0 + 4.0)
    code, _, stderr = _invoke(
        "stream", wav, "--model", path, "--no-pace", "-o", tmp_path / "o3", "--block-ms", "3",
        "--report", rep,
    )  # fmt: skip
    assert code == 0, stderr
    unaligned = StreamingSession(path, rescale=False).delay
    assert json.loads(rep.read_text())["algorithmic_latency_ms"] == 1000 * unaligned / 8000
    code, _, stderr = _invoke("stream", wav, "--model", path, "--aligned", "--block-ms", "3")
    assert code == 1 and "multiple of 2 ms" in stderr


def test_stdin_pcm_and_resampling(step_graph: tuple[TorchSeparator, Path], tmp_path: Path) -> None:
    _, path = step_graph
    pcm = (np.clip(_mix(4000, seed=1), -1, 1) * 32767).astype("<i2")
    code, _, stderr = _invoke(
        "stream", "-", "--model", path, "--no-pace", "--rate", "16000", "-o", tmp_path,
        stdin=pcm.tobytes(),
    )  # fmt: skip
    assert code == 0, stderr
    got, sr = sf.read(tmp_path / "stdin" / "s1.wav", dtype="float32")
    assert sr == 16000 and got.shape == (4000,) and np.abs(got).max() > 0


def test_a_torch_artifact_is_exported_on_the_fly(tmp_path: Path) -> None:
    art = save_artifact(_causal(), tmp_path / "art")
    wav = tmp_path / "a.wav"
    sf.write(wav, _mix(800), 8000)
    code, stdout, stderr = _invoke("stream", wav, "--model", art, "--no-pace", "-o", tmp_path)
    assert code == 0, stderr
    assert "4 hops per call" in stdout
    assert sf.info(str(tmp_path / "a" / "s2.wav")).frames == 800


def test_clear_errors(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, _mix(800), 8000)
    torch.manual_seed(0)
    off = export_onnx(build("convtasnet-test").eval(), tmp_path / "off.onnx", 0.25)
    code, _, stderr = _invoke("stream", wav, "--model", off, "--no-pace", "-o", tmp_path)
    assert code == 1 and "cannot stream" in stderr
    if importlib.util.find_spec("sounddevice") is None:
        code, _, stderr = _invoke("stream", "--mic", "--model", off)
        assert code == 1 and "--mic needs the sounddevice package" in stderr
    code, _, stderr = _invoke("stream", tmp_path / "missing.wav", "-o", tmp_path)
    assert code == 1 and "missing.wav" in stderr
    code, _, stderr = _invoke("stream", "-o", tmp_path)
    assert code == 1 and "one input" in stderr


def test_warm_up_runs_the_graph_and_leaves_the_stream_alone(
    step_graph: tuple[TorchSeparator, Path],
) -> None:
    _, path = step_graph
    x = _mix(2000, seed=3)
    want = _aligned_stream(path, x)
    s = StreamingSession(path, rescale=False)
    calls = []
    step = s.model.step
    s.model.step = lambda *a: calls.append(1) or step(*a)  # type: ignore[method-assign]
    s.warm_up(7)
    assert len(calls) == 7 and s.hops_run == 0 and s.n_pushed == 0
    got = np.concatenate([s.push(x), s.flush()], axis=-1)[:, s.delay :]
    np.testing.assert_array_equal(got, want)


def test_steal_time_is_read_from_proc_stat(tmp_path: Path) -> None:
    import os

    from edgesep.runtime.realtime import steal_seconds

    stat = tmp_path / "stat"
    stat.write_text("cpu  3043741 1180786 283501 1321036 8292 0 3304 38399 0 0\ncpu0 1 2 3\n")
    assert steal_seconds(str(stat)) == pytest.approx(38399 / os.sysconf("SC_CLK_TCK"))
    stat.write_text("cpu  1 2 3\n")  # an old kernel without the steal column
    assert steal_seconds(str(stat)) is None
    assert steal_seconds(str(tmp_path / "missing")) is None


def test_a_failing_write_stops_the_stream_and_leaves_no_file(
    step_graph: tuple[TorchSeparator, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgesep import audio

    _, path = step_graph
    wav = tmp_path / "a.wav"
    sf.write(wav, _mix(8000), 8000)
    calls = []

    def full_disk(self: object, block: np.ndarray) -> None:
        calls.append(block.shape)
        raise OSError(28, "No space left on device")

    # the writes happen on the writer thread: its error must reach the command
    monkeypatch.setattr(audio.AtomicWriter, "write", full_disk)
    code, _, stderr = _invoke("stream", wav, "--model", path, "--no-pace", "-o", tmp_path / "o")
    assert code == 1 and "No space left on device" in stderr
    assert len(calls) == 1, "the stream stopped at the first failed write"
    assert not list((tmp_path / "o").rglob("*.wav")), "no partial output kept"


class _FakeClock:
    """Wall clock that advances only when a push runs, by the next planned cost."""

    def __init__(self, costs_ms: list[float]) -> None:
        self.t = 0.0
        self.costs = list(costs_ms)
        self.in_push = False

    def __call__(self) -> float:
        if self.in_push:
            self.t += self.costs.pop(0) / 1000.0
        self.in_push = not self.in_push
        return self.t


def test_unpaced_schedule_counts_backlog_misses(step_graph: tuple[TorchSeparator, Path]) -> None:
    """Blocks of 2 ms arrive at 2, 4, 6, 8 ms; pushes cost 1, 1, 3, 1 ms. The third ends at
    9 ms, 1 ms after the fourth block arrived (a miss); the fourth starts late, at 9 ms, and ends
    at 10 ms, just in time."""
    _, path = step_graph
    s = StreamingSession(path, rescale=False)
    clock = _FakeClock([1.0, 1.0, 3.0, 1.0])
    clock.in_push = True  # the runner reads the start time first: no cost then
    clock.costs.insert(0, 0.0)
    cpu = iter(np.arange(8) * 1e-3)  # CPU clock: 1 ms per push, never late
    runner = RealtimeRunner(s, pace=False, clock=clock, cpu_clock=lambda: float(next(cpu)))
    blocks = [_mix(16, seed=i)[None] for i in range(4)]
    outs = list(runner.process(blocks))
    assert [o.shape for o in outs] == [(2, 1, 16)] * 4
    rep = runner.report
    assert rep.push_ms == pytest.approx([1.0, 1.0, 3.0, 1.0])
    assert rep.deadline_misses == 1 and rep.max_lateness_ms == pytest.approx(1.0)
    assert rep.deadline_misses_cpu == 0 and rep.push_cpu_ms == pytest.approx([1.0] * 4)
    summary = rep.summary()
    assert summary["rtf"] == pytest.approx(6.0 / 8.0)
    assert summary["max_push_ms"] == pytest.approx(3.0)
    assert summary["max_push_cpu_ms"] == pytest.approx(1.0)
    assert summary["algorithmic_latency_ms"] == pytest.approx(1000 * s.delay / 8000)
    # responses (arrival to finish): 1, 1, 3 and 2 ms (the 4th waited 1 ms behind the 3rd)
    assert rep.push_response_ms == pytest.approx([1.0, 1.0, 3.0, 2.0])
    assert summary["deadline_ms"] == pytest.approx(2.0) and summary["max_response_ms"] == 3.0
    assert summary["misses_by_deadline_ms"] == {"2": 1, "4": 0, "8": 0, "16": 0, "32": 0, "64": 0}
    assert summary["playback_latency_ms"] == pytest.approx(1000 * s.delay / 8000 + 2.0 + 2.0)


def test_a_longer_deadline_absorbs_the_backlog(step_graph: tuple[TorchSeparator, Path]) -> None:
    """The schedule above with 3 ms allowed per block: no miss, and the playback latency
    grows by the 1 ms added to the deadline."""
    _, path = step_graph
    s = StreamingSession(path, rescale=False)
    clock = _FakeClock([0.0, 1.0, 1.0, 3.0, 1.0])
    clock.in_push = True
    cpu = iter(np.arange(8) * 1e-3)
    runner = RealtimeRunner(
        s, pace=False, clock=clock, cpu_clock=lambda: float(next(cpu)), deadline_seconds=3e-3
    )
    list(runner.process([_mix(16, seed=i)[None] for i in range(4)]))
    summary = runner.report.summary()
    assert summary["deadline_misses"] == 0 and summary["deadline_ms"] == pytest.approx(3.0)
    assert summary["playback_latency_ms"] == pytest.approx(1000 * s.delay / 8000 + 2.0 + 3.0)
    with pytest.raises(ValueError, match="deadline_seconds"):
        RealtimeRunner(s, deadline_seconds=0.0)


def test_causal_rescaler_finds_the_least_squares_gains() -> None:
    """Estimates at wrong gains (1/3 and -2) plus a little leakage: after a few time constants
    the causal gains are those of a least-squares fit over the recent past, which for a
    stationary signal are the whole-signal lstsq gains."""
    from edgesep.runtime.level import CausalRescaler

    rng = np.random.default_rng(0)
    n = 8000 * 12
    s = rng.standard_normal((2, 1, n))
    mix = s.sum(axis=0)
    est = np.stack([s[0] / 3 + 0.05 * s[1], -2 * s[1] + 0.05 * s[0]]).astype(np.float32)
    r = CausalRescaler(2, 1, 8000, tau_seconds=2.0)
    out = np.concatenate(
        [r.process(est[..., a : a + 64], mix[:, a : a + 64]) for a in range(0, n, 64)], axis=-1
    )
    gains = np.linalg.lstsq(est[:, 0].T.astype(np.float64), mix[0], rcond=None)[0]
    tail = slice(n - 8000, n)
    np.testing.assert_allclose(out[:, 0, tail], gains[:, None] * est[:, 0, tail], rtol=0, atol=0.05)
    # est = M @ s with M = [[1/3, .05], [.05, -2]]; mix = s0 + s1 = a @ est => a = [1, 1] M^-1
    exact = np.linalg.solve(np.array([[1 / 3, 0.05], [0.05, -2.0]]).T, np.ones(2))
    np.testing.assert_allclose(gains, exact, rtol=1e-3)


class _SpinClock:
    """A clock that ``sleep`` moves forward by the time asked and each read by 0.1 ms."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.t += 1e-4
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_wait_until_sleeps_then_spins_the_last_part() -> None:
    from edgesep.runtime.realtime import wait_until

    c = _SpinClock()
    wait_until(0.010, 0.002, c, c.sleep)
    assert c.slept == [pytest.approx(0.010 - 1e-4 - 0.002)]
    assert c.t >= 0.010 and c.reads >= 20, "the last 2 ms are spun in 0.1 ms reads"
    c = _SpinClock()
    wait_until(0.010, 0.0, c, c.sleep)
    assert c.slept == [pytest.approx(0.010 - 1e-4)] and c.reads == 2  # sleep only
    c = _SpinClock()
    wait_until(0.0, 0.002, c, c.sleep)  # already late: neither sleeps nor spins
    assert c.slept == [] and c.reads == 2


def test_paced_runner_waits_for_each_block_and_restores_the_switch_interval(
    step_graph: tuple[TorchSeparator, Path],
) -> None:
    import sys

    _, path = step_graph
    s = StreamingSession(
        path, rescale=False
    )  # 2 hops of 8 samples per call: a 16-sample block is 2 ms
    c = _SpinClock()
    before = sys.getswitchinterval()
    runner = RealtimeRunner(s, clock=c, sleep=c.sleep, spin_seconds=5e-4, switch_interval=2e-3)
    seen = []
    for _ in runner.process([_mix(16, seed=i)[None] for i in range(3)]):
        seen.append(sys.getswitchinterval())
    assert seen == [pytest.approx(2e-3)] * 3 and sys.getswitchinterval() == before
    # every push started once its block had arrived (2, 4, 6 ms), after spinning 0.5 ms
    assert len(c.slept) == 3 and all(t < 2e-3 - 5e-4 + 1e-9 for t in c.slept)
    assert runner.report.deadline_misses == 0 and c.t >= 6e-3
    with pytest.raises(ValueError, match="spin_seconds"):
        RealtimeRunner(s, spin_seconds=-1.0)


def _niceness(tid: int) -> int | None:
    return os.getpriority(os.PRIO_PROCESS, tid) if hasattr(os, "getpriority") else None


def test_progress_is_drawn_by_the_writer_after_outputs(
    step_graph: tuple[TorchSeparator, Path], tmp_path: Path
) -> None:
    import threading

    from edgesep.audio import AtomicWriter
    from edgesep.cli.stream_io import OutputWriter

    _, path = step_graph
    s = StreamingSession(path, rescale=False)
    threads = []
    with (
        AtomicWriter(tmp_path / "a.wav", 8000, 1, "FLOAT") as wa,
        AtomicWriter(tmp_path / "b.wav", 8000, 1, "FLOAT") as wb,
    ):
        out = OutputWriter(
            s,
            [wa, wb],
            8000,
            1,
            rescale=False,
            after_output=lambda: threads.append(
                (threading.current_thread().name, _niceness(threading.get_native_id()))
            ),
        )
        for i in range(4):
            out.put_input(_mix(16, seed=i)[None])
            out.put_output(s.push(_mix(16, seed=i)[None]))
        out.close(64)
    # the writer yields to the stream thread: 10 nicer (Linux; where niceness is per thread)
    main = _niceness(threading.get_native_id())
    nicer = None if main is None else min(19, main + 10)
    assert threads == [("edgesep-stream-writer", nicer)] * 4
    code, _, stderr = _invoke("stream", tmp_path / "a.wav", "--spin-ms", "-1", "-o", tmp_path)
    assert code == 1 and "--spin-ms" in stderr
    code, _, stderr = _invoke("stream", tmp_path / "a.wav", "--deadline-ms", "0", "-o", tmp_path)
    assert code == 1 and "--deadline-ms" in stderr
    for bad in ("0", "-8"):
        code, _, stderr = _invoke("stream", tmp_path / "a.wav", "--block-ms", bad, "-o", tmp_path)
        assert code == 1 and "--block-ms must be positive" in stderr


def test_realtime_priority_sets_and_restores_fifo(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from edgesep.runtime import realtime

    if not hasattr(os, "sched_setscheduler"):
        pytest.skip("no sched_setscheduler on this platform")
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: os.SCHED_OTHER)
    monkeypatch.setattr(os, "sched_getparam", lambda pid: os.sched_param(0))
    monkeypatch.setattr(
        os, "sched_setscheduler", lambda pid, pol, par: calls.append((pol, par.sched_priority))
    )
    restore = realtime.realtime_priority(40)
    assert calls == [(os.SCHED_FIFO, 40)]
    restore()
    assert calls[-1] == (os.SCHED_OTHER, 0)
    with pytest.raises(ValueError, match=r"in 1\.\.99"):
        realtime.realtime_priority(100)

    def refuse(pid: int, pol: int, par: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with pytest.raises(PermissionError, match="CAP_SYS_NICE"):
        realtime.realtime_priority(40)


def test_runner_under_rt_priority_restores_the_policy(
    step_graph: tuple[TorchSeparator, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgesep.runtime import realtime

    _, path = step_graph
    events: list[str] = []

    def fake_priority(priority: int) -> object:
        events.append(f"fifo {priority}")
        return lambda: events.append("restored")

    monkeypatch.setattr(realtime, "realtime_priority", fake_priority)
    runner = RealtimeRunner(StreamingSession(path, rescale=False), pace=False, rt_priority=30)
    for _ in runner.process([_mix(16, seed=i)[None] for i in range(2)]):
        events.append("push")
    assert events == ["fifo 30", "push", "push", "restored"]
