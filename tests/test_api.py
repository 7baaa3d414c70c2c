"""The small public API: edgesep.load_model, create_model, list_models, separate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import edgesep
from edgesep.models.artifact import save_artifact
from edgesep.models.zoo_registry import build


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_artifact(build("convtasnet-test").eval(), tmp_path_factory.mktemp("a") / "m")


def test_list_models_has_configs_with_params() -> None:
    entries = {e["name"]: e for e in edgesep.list_models()}
    assert entries["convtasnet-paper"]["n_params"] == 5_050_545
    assert not entries["convtasnet-paper"]["trained"]


def test_load_model_from_path_and_separate(artifact: Path) -> None:
    model = edgesep.load_model(str(artifact))
    assert not model.training
    rng = np.random.default_rng(0)
    mono = rng.standard_normal(12_001).astype(np.float32) * 0.1
    out = model.separate(mono, 16_000)  # resampled to 8 kHz and back
    assert out.shape == (2, 12_001) and np.isfinite(out).all()
    stereo = np.stack([mono, mono[::-1].copy()])
    assert edgesep.separate(stereo, 16_000, model=model).shape == (2, 2, 12_001)
    # the top-level function takes a path too and gives the same result
    np.testing.assert_allclose(edgesep.separate(mono, 16_000, model=str(artifact)), out, atol=1e-6)


def test_untrained_config_name_is_refused() -> None:
    with pytest.raises(ValueError, match="without trained weights"):
        edgesep.load_model("convtasnet-tiny")


def test_create_model_builds_any_config_untrained_with_overrides() -> None:
    model = edgesep.create_model("convtasnet-paper")
    assert model.n_params() == 5_050_545  # the paper's count
    three = edgesep.create_model("sudormrf-test", n_src=3)
    assert three.n_src == 3 and three(torch.zeros(1, 1, 800)).shape == (1, 3, 1, 800)
    with pytest.raises(KeyError, match="convtasnet-tiny"):
        edgesep.create_model("convtasnet-tiniest")
