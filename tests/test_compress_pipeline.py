"""Recipes and ``edgesep compress``: passes in order, artifact with records, before/after report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from edgesep.cli.main import app
from edgesep.compress import PassContext, load_recipe, records_of, run_pipeline, shapes
from edgesep.config import to_dict
from edgesep.models.artifact import read_card, save_artifact
from edgesep.models.zoo_registry import build
from edgesep.train.finetune import FitConfig
from edgesep.zoo import load
from test_compress_core import fit_config  # noqa: F401  (the tone-corpus fit fixture)


def _recipe(tmp_path: Path, fit: FitConfig, passes: list[dict[str, object]]) -> Path:
    path = tmp_path / "recipe.yaml"
    fit_dict = to_dict(fit)
    recipe = {
        "seed": 1,
        "fit": fit_dict,
        "passes": passes,
        "report": {"test_dirs": list(fit.valid_dirs), "max_items": 2, "latency_runs": 2},
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_load_recipe_checks_every_pass(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"passes": [{"pass": "prune-structured", "ratoi": 0.5}]}))
    with pytest.raises(ValueError, match=r"bad\.yaml: passes\[0\].*ratoi"):
        load_recipe(bad)
    bad.write_text(yaml.safe_dump({"passes": [{"pass": "shrink"}]}))
    with pytest.raises(ValueError, match="unknown compression pass 'shrink'"):
        load_recipe(bad)
    bad.write_text(yaml.safe_dump({"passes": []}))
    with pytest.raises(ValueError, match="non-empty"):
        load_recipe(bad)


def test_run_pipeline_chains_passes_and_records(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    passes = [
        {"pass": "prune-structured", "ratio": 0.5},
        {"pass": "cluster", "bits": 4, "min_numel": 64},
    ]
    path.write_text(yaml.safe_dump({"passes": passes}))
    model = build("convtasnet-test").eval()
    out, results = run_pipeline(load_recipe(path), model, PassContext())
    assert [r["pass"] for r in records_of(out)] == ["prune-structured", "cluster"]
    assert [r.record["pass"] for r in results] == ["prune-structured", "cluster"]
    fresh = build("convtasnet-test")
    from edgesep.compress import replay

    assert shapes(replay(fresh, records_of(out))) == shapes(out)


def test_cli_compress_writes_artifact_and_report(
    tmp_path: Path,
    fit_config: FitConfig,  # noqa: F811
) -> None:
    torch.manual_seed(0)
    base = save_artifact(build("convtasnet-test").eval(), tmp_path / "base")
    passes = [
        {"pass": "prune-structured", "ratio": 0.5, "finetune_steps": 2},
        {"pass": "cluster", "bits": 4, "min_numel": 64, "raw_bits": 8},
    ]
    recipe = _recipe(tmp_path, fit_config, passes)
    out = tmp_path / "out" / "small"
    result = CliRunner().invoke(app, ["compress", str(recipe), "-m", str(base), "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_name("small.report.json").read_text())
    assert report["after"]["bytes"] < report["before"]["bytes"]
    assert report["compare"]["bytes_ratio"] == pytest.approx(
        report["before"]["bytes"] / report["after"]["bytes"]
    )
    assert report["after"]["macs_per_second"] < report["before"]["macs_per_second"]
    assert "si_snri" in report["after"] and "sdri_delta_db" in report["compare"]
    assert report["model_weights_sha256"] == read_card(base)["weights_sha256"]
    card = read_card(out)
    assert [r["pass"] for r in card["compression_records"]] == ["prune-structured", "cluster"]
    assert (
        card["compression"]["report"]["after"]["bytes"]
        == out.with_suffix(".safetensors").stat().st_size
    )
    loaded = load(out.with_suffix(".safetensors"))  # loads like any model (records replayed)
    assert loaded.n_params() == report["after"]["n_params"]
    passes_dir = out.with_name("small.passes")
    assert (passes_dir / "01-prune-structured.safetensors").is_file()
    assert len(json.loads((passes_dir / "stats.json").read_text())) == 2


def test_cli_compress_without_its_test_data_leaves_nothing(
    tmp_path: Path,
    fit_config: FitConfig,  # noqa: F811
) -> None:
    recipe = _recipe(tmp_path, fit_config, [{"pass": "cluster", "bits": 4}])
    data = yaml.safe_load(recipe.read_text())
    data["report"]["test_dirs"] = [str(tmp_path / "no-such-set")]
    recipe.write_text(yaml.safe_dump(data))
    out = tmp_path / "out" / "small"
    result = CliRunner().invoke(app, ["compress", str(recipe), "-o", str(out)])
    assert result.exit_code == 1 and "no-such-set" in result.output
    assert not (tmp_path / "out").exists()
