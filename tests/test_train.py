"""The training loop on a tiny corpus of tone-and-noise "speakers": outputs, exact resume, CLI.

Speakers are harmonic tones with their own fundamental plus a little noise, written with
soundfile, so no speech synthesiser is needed; the corpus has a data card like the real ones.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console
from safetensors.torch import load_file
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.config import replace, to_dict
from edgesep.data.cards import read_card
from edgesep.data.corpus import load_corpus
from edgesep.data.dynamic import DynamicMixConfig, PoolConfig
from edgesep.data.mixing import build_mixtures
from edgesep.data.synth.tones import write_tone_corpus
from edgesep.models.artifact import load_artifact
from edgesep.models.artifact import read_card as read_model_card
from edgesep.train.loop import TrainConfig, train

SR = 8000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("data")
    corpus = write_tone_corpus(base / "corpus")
    valid = build_mixtures(load_corpus(corpus, "valid"), base / "valid-mix", 2, SR, seed=0)
    return corpus, valid


def make_config(data: tuple[Path, Path], out_dir: Path, **changes: object) -> TrainConfig:
    corpus, valid = data
    cfg = TrainConfig(
        model="convtasnet-test",
        data=DynamicMixConfig(
            pools=(PoolConfig(str(corpus), "train", 1.0),),
            segment_seconds=0.25,
            sample_rate=SR,
            epoch_size=6,  # 3 steps per epoch: 4 steps cross an epoch boundary
        ),
        valid_dirs=(str(valid),),
        out_dir=str(out_dir),
        seed=1,
        threads=1,
        device="cpu",
        batch_size=2,
        max_steps=4,
        eval_every=4,
    )
    return replace(cfg, **changes)


def quiet() -> Console:
    return Console(quiet=True)


def test_training_writes_log_checkpoint_and_best_artifact(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg = make_config(data, tmp_path / "run")
    best = train(cfg, console=quiet())
    out = tmp_path / "run"
    assert best == out / "best"

    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [e for e in lines if "loss" in e]
    assert [e["step"] for e in losses] == [1, 2, 3, 4]
    assert all(math.isfinite(e["loss"]) for e in losses)
    evals = [e for e in lines if "valid" in e]
    assert [e["step"] for e in evals] == [4]
    assert set(evals[0]["valid"]) == {"valid-mix", "mean"}

    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())
    assert state["step"] == 4
    assert state["best"] == pytest.approx(evals[0]["valid"]["mean"])
    assert (out / "checkpoints" / "last" / "optimizer.pt").is_file()
    assert json.loads((out / "config.json").read_text()) == to_dict(cfg)

    # the only evaluation was at the last step, so the best model is the last one
    last = load_file(str(out / "checkpoints" / "last" / "model.safetensors"))
    model = load_artifact(best)
    for name, value in model.state_dict().items():
        assert torch.equal(value, last[name]), name

    card = read_model_card(best)
    corpus = str(data[0])
    assert card["training"]["config"] == to_dict(cfg)
    assert card["training"]["step"] == 4 and card["training"]["seed"] == 1
    assert card["data_cards"][corpus]["content_hash"] == read_card(corpus)["content_hash"]
    assert card["data_cards"][corpus]["kind"] == "utterance-corpus"
    assert {"torch", "numpy", "python", "edgesep"} <= set(card["software"])
    assert card["metrics"]["valid_si_snri_db"] == evals[0]["valid"]
    # the checkpoint carries the same run card (config, data cards, software) for resuming
    ckpt_card = json.loads((out / "checkpoints" / "last" / "card.json").read_text())
    assert ckpt_card["training"]["config"] == to_dict(cfg)
    assert ckpt_card["data_cards"] == card["data_cards"]


def test_resume_continues_exactly(data: tuple[Path, Path], tmp_path: Path) -> None:
    straight = make_config(data, tmp_path / "a")
    train(straight, console=quiet())

    split = make_config(data, tmp_path / "b", max_steps=2)
    train(split, console=quiet())
    first_half = load_file(str(tmp_path / "b" / "checkpoints" / "last" / "model.safetensors"))
    train(replace(split, max_steps=4), resume=True, console=quiet())

    a = load_file(str(tmp_path / "a" / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoints" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # the comparison means something only if steps 3-4 changed the weights
    assert any(not torch.equal(first_half[n], b[n]) for n in b)
    state = json.loads((tmp_path / "b" / "checkpoints" / "last" / "state.json").read_text())
    assert state["step"] == 4
    assert [e["step"] for e in state["history"]] == [2, 4]


def test_used_out_dir_needs_resume(data: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = make_config(data, tmp_path / "run", max_steps=1)
    train(cfg, console=quiet())
    with pytest.raises(FileExistsError, match="resume"):
        train(cfg, console=quiet())


def test_resume_without_a_checkpoint_is_refused(data: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        train(make_config(data, tmp_path / "run"), resume=True, console=quiet())
    assert not (tmp_path / "run").exists()


def test_cli_says_when_no_best_model_exists_yet(data: tuple[Path, Path], tmp_path: Path) -> None:
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(to_dict(make_config(data, tmp_path / "unused"))))
    out = tmp_path / "early"
    args = ["train", str(config), f"out_dir={out}", "max_steps=1", "eval_every=5"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0 and "best model" in result.output
    (out / "best.safetensors").unlink()  # as when a run is stopped before any validation
    again = CliRunner().invoke(app, [*args, "--resume"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert again.exit_code == 0, again.output
    assert "no best model in this run's folder" in again.output


def test_training_needs_validation_data(data: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid_dirs"):
        train(make_config(data, tmp_path / "run", valid_dirs=()), console=quiet())
    assert not (tmp_path / "run").exists()


def test_cli_train_with_overrides(data: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = to_dict(make_config(data, tmp_path / "unused"))
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "cli-run"
    args = [
        "train",
        str(config),
        f"out_dir={out}",
        "max_steps=2",
        "eval_every=1",
        "lr=0.0005",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "best model" in result.output
    saved = json.loads((out / "config.json").read_text())
    wanted = {"max_steps": 2, "eval_every": 1, "lr": 5e-4, "threads": 1}
    assert {k: saved[k] for k in wanted} == wanted
    assert (out / "best.safetensors").is_file() and (out / "best.json").is_file()
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())
    assert [e["step"] for e in state["history"]] == [1, 2]


def test_cli_train_reports_bad_override(data: tuple[Path, Path], tmp_path: Path) -> None:
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(to_dict(make_config(data, tmp_path / "run"))))
    result = CliRunner().invoke(app, ["train", str(config), "no_such_option=1"])
    assert result.exit_code == 1
    assert "no_such_option" in result.output
    assert not (tmp_path / "run").exists()


def test_resume_with_changed_recipe_records_it(data: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = make_config(data, tmp_path / "run", max_steps=2)
    train(cfg, console=quiet())
    changed = replace(cfg, max_steps=4, batch_size=1, lr=5e-4)
    train(changed, resume=True, console=quiet())
    state = json.loads((tmp_path / "run" / "checkpoints" / "last" / "state.json").read_text())
    (record,) = state["config_changes"]
    assert record["step"] == 2
    assert record["batch_size"] == [cfg.batch_size, 1] and record["lr"] == [cfg.lr, 5e-4]
    assert record["max_steps"] == [2, 4]
    assert state["step"] == 4 and state["lr"] == 5e-4


def test_resume_from_a_copied_checkpoint(data: tuple[Path, Path], tmp_path: Path) -> None:
    """A committed checkpoint copied into a fresh run folder (no log, no config.json) resumes."""
    cfg = make_config(data, tmp_path / "first", max_steps=2)
    train(cfg, console=quiet())
    fresh = tmp_path / "fresh" / "checkpoints"
    fresh.mkdir(parents=True)
    shutil.copytree(tmp_path / "first" / "checkpoints" / "last", fresh / "last")
    moved = replace(cfg, out_dir=str(tmp_path / "fresh"), max_steps=3)
    train(moved, resume=True, console=quiet())
    state = json.loads((fresh / "last" / "state.json").read_text())
    assert state["step"] == 3
    assert state["config_changes"][0]["out_dir"] == [cfg.out_dir, moved.out_dir]


def test_time_limit_still_validates_the_last_weights(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    cfg = make_config(data, tmp_path / "run", max_steps=50, eval_every=40, max_minutes=1e-6)
    train(cfg, console=quiet())
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [e["step"] for e in lines if "valid" in e]
    assert evals == [1]  # stopped by the clock after one step, and that step was validated


@pytest.mark.parametrize("family_config", ["bsrnn-test", "liteunet-test"])
def test_every_family_trains_with_the_same_command(
    data: tuple[Path, Path], tmp_path: Path, family_config: str
) -> None:
    cfg = make_config(data, tmp_path / "run", model=family_config, max_steps=2, eval_every=2)
    best = train(cfg, console=quiet())
    model = load_artifact(best)
    assert model.family == family_config.removesuffix("-test")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(e["loss"]) for e in log if "loss" in e)
