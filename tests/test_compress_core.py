"""The compression core contract: run_pass, records in artifacts and their replay, losses, fit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from edgesep.compress import (
    PASSES,
    DistillLoss,
    PassContext,
    PassResult,
    clone,
    make_pass,
    records_of,
    register_replayer,
    run_pass,
    shapes,
    task_loss,
)
from edgesep.data.corpus import load_corpus
from edgesep.data.dynamic import DynamicMixConfig, PoolConfig
from edgesep.data.mixing import build_mixtures
from edgesep.metrics.sisnr import si_snr
from edgesep.models.artifact import ArtifactError, load_artifact, read_card, save_artifact
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build
from edgesep.train.finetune import FitConfig, make_eval, make_fit
from test_train import write_tone_corpus


@PASSES.register("test-scale")
@dataclasses.dataclass(frozen=True)
class Scale:
    """A value-only pass: multiplies every weight by ``factor``."""

    factor: float = 0.5

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        out = clone(model)
        with torch.no_grad():
            for p in out.parameters():
                p.mul_(self.factor)
        return PassResult(out, {}, {"n_params": out.n_params()})


@PASSES.register("test-mutate")
@dataclasses.dataclass(frozen=True)
class Mutate:
    """A broken pass that changes its input."""

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        with torch.no_grad():
            next(model.parameters()).add_(1.0)
        return PassResult(clone(model), {})


def _add_marker(model: Separator, n: int) -> Separator:
    model.register_buffer("marker", torch.zeros(n))
    return model


@PASSES.register("test-marker")
@dataclasses.dataclass(frozen=True)
class Marker:
    """A structural pass: adds a buffer of ``n`` values, so loading needs the replay."""

    n: int = 3

    def __call__(self, model: Separator, ctx: PassContext) -> PassResult:
        out = _add_marker(clone(model), self.n)
        with torch.no_grad():
            out.marker.copy_(torch.arange(self.n, dtype=torch.float32))
        return PassResult(out, {"n": self.n})


@register_replayer("test-marker")
def _replay_marker(model: Separator, record: dict[str, Any]) -> Separator:
    return _add_marker(model, int(record["n"]))


@pytest.fixture()
def model() -> Separator:
    torch.manual_seed(0)
    return build("convtasnet-test").eval()


def test_run_pass_leaves_the_input_alone_and_stamps_the_record(model: Separator) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = run_pass(Scale(0.5), model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert result.model is not model
    w0, w1 = next(model.parameters()), next(result.model.parameters())
    assert torch.allclose(w1, 0.5 * w0)
    assert result.record == {"pass": "test-scale", "params": {"factor": 0.5}, "replay": False}
    assert records_of(result.model) == [result.record] and records_of(model) == []
    assert result.stats["n_params"] == model.n_params() and "seconds" in result.stats
    # records accumulate along a chain of passes
    second = run_pass(Scale(2.0), result.model)
    assert [r["params"]["factor"] for r in records_of(second.model)] == [0.5, 2.0]


def test_run_pass_rejects_a_pass_that_mutates_its_input(model: Separator) -> None:
    with pytest.raises(RuntimeError, match="mutated its input"):
        run_pass(Mutate(), model)


def test_make_pass_builds_from_a_recipe_entry() -> None:
    assert make_pass({"pass": "test-scale", "factor": 0.25}) == Scale(0.25)
    with pytest.raises(KeyError, match="unknown compression pass"):
        make_pass({"pass": "no-such-pass"})
    with pytest.raises((TypeError, ValueError), match="facter"):
        make_pass({"pass": "test-scale", "facter": 1.0})


def test_records_travel_in_the_artifact_and_replay_on_load(
    model: Separator, tmp_path: Path
) -> None:
    result = run_pass(Marker(4), run_pass(Scale(0.5), model).model)
    assert result.record["replay"] is True
    path = save_artifact(result.model, tmp_path / "m")
    card = read_card(path)
    assert [r["pass"] for r in card["compression_records"]] == ["test-scale", "test-marker"]
    with safe_open(str(path), framework="pt") as fh:
        assert json.loads(fh.metadata()["records"]) == card["compression_records"]
    loaded = load_artifact(path)
    assert shapes(loaded) == shapes(result.model)
    assert torch.equal(loaded.marker, torch.arange(4.0))
    assert records_of(loaded) == records_of(result.model)
    x = torch.randn(1, 1, 800)
    assert torch.allclose(loaded(x), result.model(x))
    # a record whose replayer nobody registers fails with the file named
    bad = clone(result.model)
    object.__setattr__(bad, "compression_records", [{"pass": "nope", "replay": True}])
    path = save_artifact(bad, tmp_path / "bad")
    with pytest.raises(ArtifactError, match=r"bad\.safetensors.*do not replay"):
        load_artifact(path)


def test_task_loss_is_negative_pit_si_snr() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 2, 400, generator=g)
    est = ref.flip(1) + 0.1 * torch.randn(2, 2, 400, generator=g)  # swapped sources
    # by hand: the swapped order is the best one
    expected = -si_snr(est.flip(1), ref).mean()
    got = task_loss(build("convtasnet-test"), ref.sum(1, keepdim=True), ref, est)
    assert torch.allclose(got, expected, atol=1e-5)


def test_distill_loss_mixes_task_and_teacher_terms(model: Separator) -> None:
    g = torch.Generator().manual_seed(1)
    mix = torch.randn(2, 1, 800, generator=g)
    ref = torch.randn(2, 2, 800, generator=g)
    est = model(mix)[:, :, 0]
    teacher_est = model(mix)[:, :, 0]
    task = task_loss(model, mix, ref, est)
    assert torch.allclose(DistillLoss(clone(model), alpha=0.0)(model, mix, ref, est), task)
    pure = DistillLoss(clone(model), alpha=1.0)(model, mix, ref, est)
    assert torch.allclose(pure, -si_snr(est, teacher_est).mean(), atol=1e-4)
    mixed = DistillLoss(clone(model), alpha=0.3)(model, mix, ref, est)
    assert torch.allclose(mixed, 0.7 * task + 0.3 * pure, atol=1e-4)
    # teacher outputs are cached by content
    loss = DistillLoss(clone(model), alpha=0.5, mask_weight=1.0)
    first = loss.teacher_outputs(mix)
    assert loss.teacher_outputs(mix.clone())[0] is first[0] and first[1] is not None
    with pytest.raises(ValueError, match="alpha"):
        DistillLoss(model, alpha=1.5)


@pytest.fixture(scope="module")
def fit_config(tmp_path_factory: pytest.TempPathFactory) -> FitConfig:
    base = tmp_path_factory.mktemp("fitdata")
    corpus = write_tone_corpus(base / "corpus")
    valid = build_mixtures(load_corpus(corpus, "valid"), base / "valid-mix", 2, 8000, seed=0)
    data = DynamicMixConfig(
        pools=(PoolConfig(str(corpus), "train", 1.0),), segment_seconds=0.25, epoch_size=8
    )
    return FitConfig(data=data, valid_dirs=(str(valid),), batch_size=2, eval_every=2, lr=1e-3)


def test_fit_trains_in_place_and_restores_the_best_weights(
    model: Separator, fit_config: FitConfig
) -> None:
    fit = make_fit(fit_config, progress=False)
    evaluate = make_eval(fit)
    steps_seen: list[int] = []
    frozen = model.encoder.weight.detach().clone()

    def on_step(m: Separator, step: int) -> None:
        steps_seen.append(step)
        with torch.no_grad():
            m.encoder.weight.copy_(frozen)  # a pass would re-apply its masks here

    start = model.bottleneck.weight.detach().clone()
    out = fit(model, steps=5, on_step=on_step, seed=3)
    assert out is model and not model.training
    assert steps_seen == [1, 2, 3, 4, 5]
    assert not torch.equal(model.bottleneck.weight, start)
    assert torch.equal(model.encoder.weight, frozen)
    run = fit.history[-1]
    assert [e["step"] for e in run["evals"]] == [2, 4, 5]
    best = max(e["valid"]["mean"] for e in run["evals"])
    assert run["best_valid"] == best
    assert np.isclose(evaluate(model)["mean"], best, atol=1e-4)
    # a custom loss is used: zero loss -> no gradient -> the weights do not move
    frozen_model = clone(model)
    fit(frozen_model, steps=2, loss=lambda m, mix, s, e: 0.0 * e.sum(), seed=0)
    assert torch.equal(frozen_model.bottleneck.weight, model.bottleneck.weight)


def test_distill_loss_leaves_the_callers_teacher_trainable() -> None:
    teacher = build("convtasnet-test").train()
    DistillLoss(teacher, alpha=0.5)
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
