"""Artifacts (safetensors + JSON card) and the zoo: round trip, card, atomicity, clear errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import edgesep.models.artifact as artifact_mod
import edgesep.zoo as zoo
from edgesep.models.artifact import ArtifactError, load_artifact, read_card, save_artifact
from edgesep.models.zoo_registry import build


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build("convtasnet-test")
    with torch.no_grad():  # move weights off their init values so a bad load would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    model = _model()
    weights = save_artifact(model, tmp_path / "m", card={"seed": 7, "family": "ignored"})
    assert weights == tmp_path / "m.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    x = torch.randn(2, 1, 3001, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
    for path in (tmp_path / "m", weights, tmp_path / "m.json", str(tmp_path / "m")):
        loaded = load_artifact(path)
        assert not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x), expected)


def test_card_contents(tmp_path: Path) -> None:
    model = _model()
    card_in = {"seed": 7, "metrics": {"si_snri": 12.5}, "data": {"name": "x"}, "family": "bad"}
    save_artifact(model, tmp_path / "m.safetensors", card=card_in)
    card = read_card(tmp_path / "m")
    assert card == json.loads((tmp_path / "m.json").read_text())
    assert card["family"] == "convtasnet"  # derived keys win over the caller's
    assert card["config"]["n_filters"] == model.config.n_filters
    assert card["n_params"] == model.n_params()
    assert card["sample_rate"] == model.sample_rate
    assert card["source_names"] == list(model.source_names)
    assert set(card["software"]) >= {"python", "torch", "numpy", "edgesep"}
    assert card["seed"] == 7 and card["metrics"] == {"si_snri": 12.5} and card["data"]
    assert len(card["weights_sha256"]) == 64


def test_failed_save_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    save_artifact(model, tmp_path / "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ArtifactError, match="not JSON serialisable"):
        save_artifact(_model(1), tmp_path / "m", card={"bad": object()})

    def crash(model: torch.nn.Module, filename: str, metadata: dict[str, str]) -> None:
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(artifact_mod, "save_model", crash)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(_model(1), tmp_path / "m")
    with pytest.raises(OSError, match="disk full"):
        save_artifact(_model(1), tmp_path / "new")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no temp files, no half artifact, the old one intact


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(
        ArtifactError, match=re.escape("nothing.safetensors: weights file not found")
    ):
        load_artifact(tmp_path / "nothing")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage that is no header")
    with pytest.raises(ArtifactError, match=re.escape("junk.safetensors: not a valid safetensors")):
        load_artifact(tmp_path / "junk.json")
    save_artifact(_model(), tmp_path / "m")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=re.escape("cut.safetensors")) as info:
        load_artifact(tmp_path / "cut")
    assert "\n" not in str(info.value)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=re.escape("m.json: not a valid JSON model card")):
        load_artifact(tmp_path / "m")


def test_unknown_family_and_mismatched_card(tmp_path: Path) -> None:
    save_file({"w": torch.zeros(2)}, str(tmp_path / "alien.safetensors"), {"family": "nope"})
    with pytest.raises(ArtifactError, match=re.escape("no edgesep family/config")):
        load_artifact(tmp_path / "alien")
    meta = {"family": "nope", "config": "{}"}
    save_file({"w": torch.zeros(2)}, str(tmp_path / "alien.safetensors"), meta)
    with pytest.raises(
        ArtifactError, match=re.escape("unknown model family 'nope'; known: bsrnn, convtasnet")
    ):
        load_artifact(tmp_path / "alien")
    save_artifact(_model(0), tmp_path / "a")
    save_artifact(_model(1), tmp_path / "b")
    shutil.copy(tmp_path / "b.safetensors", tmp_path / "a.safetensors")
    with pytest.raises(ArtifactError, match=re.escape("a.json: card does not match a.safetensors")):
        load_artifact(tmp_path / "a")


def test_zoo_load_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ArtifactError, match="convtasnet-tiny: a registered config without"):
        zoo.load("convtasnet-tiny")
    assert not zoo.load("convtasnet-test", allow_untrained=True).training
    with pytest.raises(ArtifactError, match="no-such-model: unknown model"):
        zoo.load("no-such-model")

    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    save_artifact(_model(), tmp_path / "tiny-test-8k", card={"metrics": {"si_snri": 9.0}})
    assert zoo.bundled_names() == ["tiny-test-8k"]
    assert zoo.load("tiny-test-8k").n_src == 2
    entries = {e["name"]: e for e in zoo.list_entries()}
    bundled = entries["tiny-test-8k"]
    assert bundled["kind"] == "bundled" and bundled["trained"]
    assert bundled["size_bytes"] == (tmp_path / "tiny-test-8k.safetensors").stat().st_size
    assert bundled["metrics"] == {"si_snri": 9.0} and bundled["sample_rate"] == 8000
    paper = entries["convtasnet-paper"]
    assert paper["kind"] == "config" and not paper["trained"]
    assert 4e6 < paper["n_params"] < 6e6
