"""A stream that changes model under load: several step graphs, switched between pushes.

An :class:`AdaptiveStreamingSession` holds step graphs of one task, largest first (the subnets
of an elastic supernet, or any causal models with the same rate, sources, hop and delay), and
streams through one of them at a time. A push whose compute overruns its deadline moves the
stream to the next smaller graph before the next push; after ``recover_pushes`` pushes in a row
that each took under ``recover_fraction`` of their deadline it moves one size up again, and
each move up that misses at once doubles the wait before the next try (no oscillation).

On a switch the new graph's state is built from the last ``warm_seconds`` of input, replayed in
one call of the new graph, so its convolution buffers hold the recent audio instead of silence:
where ``warm_seconds`` covers the graph's receptive field, its separation from the switch on
is exactly what it would have given on the whole stream (the level gains of ``rescale`` restart
from the replayed history too). The output keeps its length and timing
(``delay`` is the same for every graph); it changes model at the switch, with no gap.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgesep.errors import InputError
from edgesep.runtime.model import Model
from edgesep.runtime.stream import StreamingSession


@dataclass(frozen=True)
class Switch:
    """One change of graph: before push number ``push`` (0-based), from level to level."""

    push: int
    from_level: int
    to_level: int
    compute_ms: float  # the push that caused it
    deadline_ms: float


class AdaptiveStreamingSession:
    """Stream through ``models`` (largest first), one at a time, switched by deadline misses.

    ``deadline_seconds``: the compute each push may take (default: the push's own duration, as
    a live source delivering that block leaves until the next one). Other options as
    :class:`StreamingSession`'s. ``level`` is the index of the graph in use; ``switches`` the
    record of changes; ``push_seconds`` the time of each push (a switch's replay included).
    """

    def __init__(
        self,
        models: Sequence[Model | str | os.PathLike[str]],
        n_channels: int = 1,
        deadline_seconds: float | None = None,
        warm_seconds: float = 1.0,
        recover_pushes: int = 50,
        recover_fraction: float = 0.5,
        hops_per_step: int | None = None,
        threads: int = 1,
        aligned: bool = False,
        rescale: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not models:
            raise InputError("an adaptive session needs at least one step graph")
        if deadline_seconds is not None and deadline_seconds <= 0:
            raise InputError(f"deadline_seconds must be positive, got {deadline_seconds}")
        if warm_seconds < 0 or recover_pushes < 1 or not 0 < recover_fraction <= 1:
            raise InputError(
                "warm_seconds must be >= 0, recover_pushes >= 1 and recover_fraction in (0, 1]"
            )
        self.models = [m if isinstance(m, Model) else Model(m, threads=threads) for m in models]
        self._options = dict(
            n_channels=n_channels, hops_per_step=hops_per_step, aligned=aligned, rescale=rescale
        )
        self._sessions = [StreamingSession(m, **self._options) for m in self.models]  # type: ignore[arg-type]
        first = self._sessions[0]

        def timing(s: StreamingSession) -> tuple[int, ...]:
            return (s.sample_rate, s.n_src, s.info.stream_hop, s.step_samples, s.delay)

        for model, s in zip(self.models, self._sessions, strict=True):
            if timing(s) != timing(first):
                raise InputError(
                    f"{model.info.path}: (rate, sources, hop, call, delay) {timing(s)} differ "
                    f"from the first graph's {timing(first)}; one adaptive stream needs graphs "
                    "that line up"
                )
        self.sample_rate = first.sample_rate
        self.n_src = first.n_src
        self.n_channels = n_channels
        self.delay = first.delay
        self.step_samples = first.step_samples
        self.deadline_seconds = deadline_seconds
        self.recover_pushes = recover_pushes
        self.recover_fraction = recover_fraction
        self.clock = clock
        self.level = 0
        self.switches: list[Switch] = []
        self.push_seconds: list[float] = []
        self._warm = round(warm_seconds * self.sample_rate)
        self._history = np.zeros((n_channels, 0), np.float32)
        self._n_pushed = 0
        self._calm = 0
        self._wait = recover_pushes
        self._just_moved_up = False

    @property
    def session(self) -> StreamingSession:
        """The session of the graph in use."""
        return self._sessions[self.level]

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """As :meth:`StreamingSession.push`; may change graph before the next push."""
        t0 = self.clock()
        out = self.session.push(chunk)
        spent = self.clock() - t0
        x = np.asarray(chunk, np.float32).reshape(self.n_channels, -1)
        self._n_pushed += x.shape[1]
        if self._warm:
            self._history = np.concatenate([self._history, x], axis=1)[:, -self._warm :]
        deadline = self.deadline_seconds or x.shape[1] / self.sample_rate
        n = len(self.push_seconds)
        if not x.shape[1]:  # an empty push computes nothing: no evidence either way
            pass
        elif spent > deadline and self.level + 1 < len(self._sessions):
            if self._just_moved_up:  # the larger graph still does not keep up: wait longer
                self._wait *= 2
            self._move(n, self.level + 1, spent, deadline)
        elif spent < self.recover_fraction * deadline and self.level > 0:
            self._calm += 1
            self._just_moved_up = False
            if self._calm >= self._wait:
                self._move(n, self.level - 1, spent, deadline)
                self._just_moved_up = True
        else:
            self._calm = 0
            self._just_moved_up = False
        self.push_seconds.append(self.clock() - t0)
        return out

    def flush(self) -> np.ndarray:
        """End the stream: the last ``delay`` samples, from the graph in use."""
        return self.session.flush()

    def _move(self, push: int, level: int, spent: float, deadline: float) -> None:
        """Switch to ``level``: a fresh session warmed on the recent input (output dropped)."""
        fresh = StreamingSession(self.models[level], **self._options)  # type: ignore[arg-type]
        if self._history.shape[1]:
            # the replay starts on a call boundary of the stream, so the new graph frames the
            # audio as if it had run from the start; its next push continues the same timeline
            start = self._n_pushed - self._history.shape[1]
            history = self._history[:, (-start) % self.step_samples :]
            fresh.push(history[0] if self.n_channels == 1 else history)
        self._sessions[level] = fresh
        self.switches.append(Switch(push, self.level, level, 1e3 * spent, 1e3 * deadline))
        self.level = level
        self._calm = 0
