"""Running a :class:`StreamingSession` against the clock: pacing, deadlines, latency report.

Input arrives block by block as a live source delivers it: block ``i`` is complete at
``arrival_i`` = (samples up to its end) / rate after the start. Its push must finish within the
*deadline* ``T`` of that, by default one block duration (before the next block is complete, as
in a double-buffered sound card); a later finish is a *deadline miss*: a live output would have
a gap. Its *response time* is ``finish_i - arrival_i`` (a push waiting behind a late one
included). An output played at a fixed delay is due ``T`` after its block arrived, so the delay
from input to played output is the algorithmic latency + one block + ``T``: a longer deadline
(an output jitter buffer, as extra periods of a sound card) buys robustness with latency. One
run gives the misses at every deadline (``misses_by_deadline_ms``), since the pushes do not
depend on it. Two clocks:

- paced (default): the loop sleeps until each block's arrival, as with a microphone, and reads
  the real finish time;
- unpaced (``pace=False``): blocks are processed as fast as possible and the same schedule is
  simulated: a push starts at ``max(arrival_i, finish_{i-1})`` and lasts its measured compute
  time, so a slow push delays the next ones just as in a live stream.

Compute is timed per push on the wall clock and on the thread's CPU clock; on a shared machine
the gap between them is time the scheduler gave to other processes. Total latency of an output
sample = the session's algorithmic delay + the compute time of the push that produced it.

While it runs, the objects that existed before it are frozen out of Python's cyclic garbage
collector (:func:`gc.freeze`): a full collection then scans only what the stream allocated,
instead of every module and model object loaded, which could otherwise pause a push. Work that
is not the separation (writing files, resampling for output, progress) belongs to another
thread; ``edgesep stream`` does it there. That thread shares the interpreter lock: a woken
stream thread waits for it until the other thread drops it, which Python forces after the
switch interval (5 ms by default, ``switch_interval`` = 1 ms here while the stream runs).
Paced, the loop can busy-wait the last ``spin_seconds`` before each arrival
(:func:`wait_until`) instead of sleeping through them.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgesep.errors import InputError
from edgesep.runtime.stream import StreamingSession

# deadlines (ms) at which each report counts the misses: the latency/robustness trade-off
DEADLINES_MS = (2, 4, 8, 16, 32, 64)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


@dataclass
class StreamReport:
    """What a real-time run cost; times in milliseconds unless named otherwise."""

    paced: bool
    sample_rate: int
    hop_samples: int
    hops_per_step: int
    block_samples: int
    algorithmic_latency_ms: float
    deadline_ms: float = 0.0  # after each block's arrival; the runner sets it (default: a block)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    n_blocks: int = 0
    deadline_misses: int = 0
    max_lateness_ms: float = 0.0
    # the same schedule simulated with CPU times as costs: the misses had the process had a
    # core to itself (on a shared machine, wall time includes other processes' turns)
    deadline_misses_cpu: int = 0
    # CPU time the hypervisor gave to other machines during the run, summed over this machine's
    # CPUs (Linux /proc/stat "steal"; None elsewhere). A stolen CPU counts as busy on the
    # thread's own clocks, so neither clock above can tell a steal from a slow push
    steal_ms: float | None = None
    push_ms: list[float] = field(default_factory=list, repr=False)
    push_cpu_ms: list[float] = field(default_factory=list, repr=False)
    push_hops: list[int] = field(default_factory=list, repr=False)
    push_response_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def hop_ms(self) -> float:
        return 1000.0 * self.hop_samples / self.sample_rate

    def per_hop_ms(self, cpu: bool = False) -> list[float]:
        times = self.push_cpu_ms if cpu else self.push_ms
        return [t / h for t, h in zip(times, self.push_hops, strict=True) if h > 0]

    def summary(self) -> dict[str, Any]:
        """Percentiles and totals (no per-push lists), JSON-ready."""
        hop_wall, hop_cpu = self.per_hop_ms(), self.per_hop_ms(cpu=True)
        push = [t for t, h in zip(self.push_ms, self.push_hops, strict=True) if h > 0]
        p99 = _pct(push, 99)
        out = {k: v for k, v in asdict(self).items() if not k.startswith("push_")}
        out.update(
            hop_ms=self.hop_ms,
            push_p50_ms=_pct(push, 50),
            push_p99_ms=p99,
            per_hop_p50_ms=_pct(hop_wall, 50),
            per_hop_p99_ms=_pct(hop_wall, 99),
            per_hop_cpu_p50_ms=_pct(hop_cpu, 50),
            per_hop_cpu_p99_ms=_pct(hop_cpu, 99),
            per_hop_p99_share_of_hop=_pct(hop_wall, 99) / self.hop_ms,
            per_hop_cpu_p99_share_of_hop=_pct(hop_cpu, 99) / self.hop_ms,
            total_latency_p99_ms=self.algorithmic_latency_ms + p99,
            response_p50_ms=_pct(self.push_response_ms, 50),
            response_p99_ms=_pct(self.push_response_ms, 99),
            max_response_ms=max(self.push_response_ms, default=0.0),
            misses_by_deadline_ms={
                str(d): sum(r > d + 1e-6 for r in self.push_response_ms) for d in DEADLINES_MS
            },
            # input to played output, each output due ``deadline`` after its block arrived
            playback_latency_ms=self.algorithmic_latency_ms
            + 1000.0 * self.block_samples / self.sample_rate
            + self.deadline_ms,
            rtf=self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0,
            rtf_cpu=sum(self.push_cpu_ms) / 1000 / self.audio_seconds
            if self.audio_seconds
            else 0.0,
            max_push_ms=max(self.push_ms, default=0.0),
            max_push_cpu_ms=max(self.push_cpu_ms, default=0.0),
            # pushes whose thread was off its CPU for over 2 ms (another thread or process had
            # it, or the push waited for a lock): what a real-time policy can prevent
            pushes_off_cpu_over_2ms=sum(
                w - c > 2.0 for w, c in zip(self.push_ms, self.push_cpu_ms, strict=True)
            ),
        )
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def steal_seconds(path: str = "/proc/stat") -> float | None:
    """Seconds of CPU time the hypervisor has stolen from this (virtual) machine since boot,
    summed over its CPUs; None where the kernel does not say (not Linux, no steal field)."""
    try:
        with open(path, "rb") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def realtime_priority(priority: int) -> Callable[[], None]:
    """Run the calling thread under the SCHED_FIFO real-time policy at ``priority`` (1-99);
    returns a function that restores its former policy.

    A SCHED_FIFO thread runs as soon as it wakes and keeps its CPU until it sleeps: ordinary
    threads (other processes, kernel threads such as a memory monitor, the stream's own writer)
    can no longer take the CPU from a push, as audio threads on phones and desktops are run.
    It cannot stop the hypervisor from descheduling a virtual CPU. A real-time thread that
    never sleeps (a spin as long as the block) is throttled by the kernel once it takes 95% of
    a CPU (``sched_rt_runtime_us``). Needs Linux and the right
    to it (root, CAP_SYS_NICE, or ``ulimit -r``); raises :class:`PermissionError` with the
    reason otherwise."""
    if not hasattr(os, "sched_setscheduler"):
        raise PermissionError("real-time priority needs Linux (os.sched_setscheduler)")
    top = os.sched_get_priority_max(os.SCHED_FIFO)
    if not 1 <= priority <= top:
        raise InputError(f"real-time priority must be in 1..{top}, got {priority}")
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:  # pid 0: the calling thread
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as exc:
        raise PermissionError(
            f"SCHED_FIFO priority {priority} refused ({exc.strerror}): it needs root, "
            "CAP_SYS_NICE or a real-time limit (ulimit -r)"
        ) from None
    return lambda: os.sched_setscheduler(0, policy, param)


def wait_until(
    when: float,
    spin_seconds: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until ``clock() >= when``: sleep until ``spin_seconds`` before it, then busy-wait.

    A sleeping thread wakes late (on the measured virtual machine: 0.2 ms at p99, several ms at
    worst); spinning the last fraction of a millisecond has it running when the block arrives,
    at the cost of that fraction of a core (``spin_seconds`` per block; docs/RUNTIME.md)."""
    rest = when - clock()
    if rest > spin_seconds:
        sleep(rest - spin_seconds)
    while clock() < when:
        pass


class RealtimeRunner:
    """Feeds blocks (C, n) at the session's rate to ``session`` on a real or simulated clock,
    yielding each push's output and filling :attr:`report`. ``clock``/``sleep`` are
    injectable for tests (defaults: ``time.perf_counter`` and ``time.sleep``);
    ``warm_up_calls`` graph calls on silence run first, off the clock
    (:meth:`StreamingSession.warm_up`). Paced, each wait ends with ``spin_seconds`` of
    busy-waiting (:func:`wait_until`; ``edgesep stream`` uses 0.5 ms); ``rt_priority`` > 0 runs
    the calling thread under SCHED_FIFO for the stream (:func:`realtime_priority`);
    ``deadline_seconds`` is the time each push has after its block arrived (default: one block
    duration)."""

    def __init__(
        self,
        session: StreamingSession,
        pace: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        cpu_clock: Callable[[], float] = time.thread_time,
        warm_up_calls: int = 20,
        spin_seconds: float = 0.0,
        switch_interval: float = 0.001,
        rt_priority: int = 0,
        deadline_seconds: float | None = None,
    ) -> None:
        if spin_seconds < 0 or switch_interval <= 0:
            raise InputError(
                f"spin_seconds must be >= 0 and switch_interval > 0, got {spin_seconds}, "
                f"{switch_interval}"
            )
        if deadline_seconds is not None and deadline_seconds <= 0:
            raise InputError(f"deadline_seconds must be positive, got {deadline_seconds}")
        self.deadline_seconds = deadline_seconds
        self.session = session
        self.pace = pace
        self.warm_up_calls = warm_up_calls
        self.spin_seconds = spin_seconds
        self.switch_interval = switch_interval
        self.rt_priority = rt_priority
        self._clock, self._sleep, self._cpu = clock, sleep, cpu_clock
        self.report = StreamReport(
            paced=pace,
            sample_rate=session.sample_rate,
            hop_samples=session.info.stream_hop,
            hops_per_step=session.hops_per_step,
            block_samples=0,
            algorithmic_latency_ms=1000.0 * session.delay_seconds,
        )

    def process(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Push every block on schedule; yields (S, C, n) per block (``delay`` late)."""
        self.session.warm_up(self.warm_up_calls)  # before the clock starts, as a device would
        restore_policy = realtime_priority(self.rt_priority) if self.rt_priority else None
        steal0 = steal_seconds()
        gc.freeze()
        interval = sys.getswitchinterval()
        sys.setswitchinterval(self.switch_interval)
        try:
            yield from self._process(blocks)
        finally:
            sys.setswitchinterval(interval)
            gc.unfreeze()
            if restore_policy is not None:
                restore_policy()
            steal1 = steal_seconds()
            if steal0 is not None and steal1 is not None:
                self.report.steal_ms = 1000.0 * (steal1 - steal0)

    def _process(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        rep, sr, s = self.report, self.session.sample_rate, self.session
        start = self._clock()
        n_in = 0
        finish_prev = 0.0  # seconds after start (simulated when unpaced)
        finish_prev_cpu = 0.0
        for block in blocks:
            x = np.asarray(block, dtype=np.float32)
            x = x[None] if x.ndim == 1 else x
            n_in += x.shape[-1]
            rep.block_samples = max(rep.block_samples, x.shape[-1])
            arrival = n_in / sr
            allowed = self.deadline_seconds or rep.block_samples / sr
            rep.deadline_ms = 1000.0 * allowed
            deadline = arrival + allowed
            if self.pace:
                wait_until(start + arrival, self.spin_seconds, self._clock, self._sleep)
            hops_before = s.hops_run
            t0, c0 = self._clock(), self._cpu()
            out = s.push(x)
            t1, c1 = self._clock(), self._cpu()
            compute = t1 - t0
            finish = t1 - start if self.pace else max(arrival, finish_prev) + compute
            finish_prev = finish
            if finish > deadline + 1e-9:  # not a miss by float rounding alone
                rep.deadline_misses += 1
                rep.max_lateness_ms = max(rep.max_lateness_ms, 1000.0 * (finish - deadline))
            finish_prev_cpu = max(arrival, finish_prev_cpu) + (c1 - c0)
            rep.deadline_misses_cpu += int(finish_prev_cpu > deadline + 1e-9)
            rep.push_ms.append(1000.0 * compute)
            rep.push_cpu_ms.append(1000.0 * (c1 - c0))
            rep.push_hops.append(s.hops_run - hops_before)
            rep.push_response_ms.append(1000.0 * (finish - arrival))
            rep.compute_seconds += compute
            rep.n_blocks += 1
            rep.audio_seconds = n_in / sr
            yield out

    def flush(self) -> np.ndarray:
        """The session's last ``delay`` samples (not timed: the stream has ended)."""
        return self.session.flush()
