"""AdaptiveStreamingSession over subnets of one causal elastic supernet: a deadline miss moves
the stream to the smaller subnet, seamlessly.

The clock is a counter that only a deliberately slow graph call advances, so the misses are
exactly the injected ones whatever the machine's load.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesep.errors import InputError
from edgesep.export.streaming import export_step_onnx
from edgesep.models.elastic import ElasticConvTasNet
from edgesep.models.zoo_registry import build
from edgesep.runtime import AdaptiveStreamingSession, Model, StreamingSession
from edgesep.runtime.adaptive import Switch

BLOCK = 64  # samples per push: 8 ms at 8 kHz


def causal_supernet() -> ElasticConvTasNet:
    """The elastic test supernet made causal (random weights)."""
    config = build("convtasnet-elastic-test").config
    largest = dataclasses.replace(config.largest, causal=True, norm="cLN")
    torch.manual_seed(0)
    return ElasticConvTasNet(dataclasses.replace(config, largest=largest)).eval()


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Step graphs of the largest and the smallest subnet of one causal supernet."""
    out = tmp_path_factory.mktemp("adaptive")
    supernet = causal_supernet()
    return [
        export_step_onnx(supernet.subnet(choice).eval(), out / f"{name}.onnx", hops_per_step=2)
        for name, choice in (
            ("largest", supernet.largest_choice()),
            ("smallest", supernet.smallest_choice()),
        )
    ]


class SlowCalls:
    """A fake clock, and a wrapper that makes a model's graph calls in chosen pushes take 1 s."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slow_pushes: set[int] = set()
        self.push = 0

    def clock(self) -> float:
        return self.now

    def slow_down(self, model: Model) -> None:
        step = model.step

        def slow_step(feed: np.ndarray, state: object) -> object:
            if self.push in self.slow_pushes:
                self.now += 1.0
            return step(feed, state)

        model.step = slow_step  # type: ignore[method-assign]


def _stream(session: object, x: np.ndarray, calls: SlowCalls | None = None) -> np.ndarray:
    outs = []
    for i, a in enumerate(range(0, len(x), BLOCK)):
        if calls is not None:
            calls.push = i
        outs.append(session.push(x[a : a + BLOCK]))  # type: ignore[attr-defined]
    outs.append(session.flush())  # type: ignore[attr-defined]
    return np.concatenate(outs, axis=-1)


def test_a_missed_deadline_moves_to_the_smaller_graph_without_a_seam(graphs: list[Path]) -> None:
    x = np.random.default_rng(0).standard_normal(40 * BLOCK).astype(np.float32) * 0.1
    calls = SlowCalls()
    calls.slow_pushes = {5}
    models = [Model(p) for p in graphs]
    calls.slow_down(models[0])
    session = AdaptiveStreamingSession(
        models, rescale=False, warm_seconds=1.0, recover_pushes=1000, clock=calls.clock
    )
    y = _stream(session, x, calls)
    # push 5 made 4 slow graph calls (2 hops of 8 samples each), 1 s apiece, against 8 ms
    assert session.switches == [Switch(5, 0, 1, 4000.0, 8.0)]
    assert session.level == 1 and len(session.push_seconds) == 40
    # each graph's own whole-stream output: before the switch the large one's, after it the
    # small one's, sample for sample (the replayed second covers its receptive field)
    big, small = (_stream(StreamingSession(p, rescale=False), x) for p in graphs)
    assert y.shape == big.shape
    cut = 6 * BLOCK
    np.testing.assert_allclose(y[..., :cut], big[..., :cut], atol=1e-6)
    np.testing.assert_allclose(y[..., cut:], small[..., cut:], atol=1e-5)
    assert np.abs(big[..., cut:] - small[..., cut:]).max() > 1e-3  # the graphs do differ


def test_calm_pushes_move_back_up_and_a_new_miss_doubles_the_wait(graphs: list[Path]) -> None:
    x = np.zeros(40 * BLOCK, np.float32)
    calls = SlowCalls()
    calls.slow_pushes = {2, 6}  # push 6 is the first on the large graph again
    models = [Model(p) for p in graphs]
    calls.slow_down(models[0])
    session = AdaptiveStreamingSession(models, recover_pushes=3, clock=calls.clock)
    _stream(session, x, calls)
    # down after push 2; up after 3 calm pushes (3-5); down again at once (6); then 6 calm
    # pushes (7-12) before the next try up
    assert [(s.push, s.from_level, s.to_level) for s in session.switches] == [
        (2, 0, 1),
        (5, 1, 0),
        (6, 0, 1),
        (12, 1, 0),
    ]


def test_an_empty_push_is_no_deadline_miss(graphs: list[Path]) -> None:
    ticks = itertools.count()  # a clock that moves on every read: any push takes some time
    session = AdaptiveStreamingSession(graphs, clock=lambda: 1e-6 * next(ticks))
    assert session.push(np.zeros(0, np.float32)).shape == (2, 0)
    assert session.switches == [] and session.level == 0


def test_graphs_that_do_not_line_up_are_refused(graphs: list[Path], tmp_path: Path) -> None:
    model = causal_supernet().subnet(causal_supernet().smallest_choice()).eval()
    other = export_step_onnx(model, tmp_path / "step4.onnx", hops_per_step=4)
    with pytest.raises(InputError, match="line up"):
        AdaptiveStreamingSession([graphs[0], other])
    with pytest.raises(InputError, match="at least one"):
        AdaptiveStreamingSession([])
    with pytest.raises(InputError, match="deadline_seconds"):
        AdaptiveStreamingSession(graphs, deadline_seconds=0)
