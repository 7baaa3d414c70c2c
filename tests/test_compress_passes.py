"""Every compression pass keeps its promises: sparsity reached, shapes replayed, bytes shrunk,
the model still conforms (runs on odd lengths, exports to ONNX with parity, streams as it runs
offline). Quality targets are measured in docs/COMPRESSION.md, not here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edgesep.compress import PASSES, PassContext, records_of, run_pass, shapes
from edgesep.compress.passes import (
    Cluster,
    Distill,
    GroupSparsity,
    Sensitivity,
    StructuredPrune,
    UnstructuredPrune,
)
from edgesep.compress.passes.cluster import clusterable, kmeans_1d
from edgesep.compress.passes.prune_structured import block_widths
from edgesep.compress.passes.sensitivity import choose_bits, choose_ratios, magnitude_mask
from edgesep.compress.passes.sparsity import channel_group_norms, group_lasso
from edgesep.export.onnx import check_parity, export_onnx
from edgesep.export.palette import pack_bits, packed_bytes, unpack_bits
from edgesep.models.artifact import load_artifact, save_artifact
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import build
from edgesep.train.finetune import FitConfig, make_calibration, make_eval, make_fit
from test_compress_core import fit_config  # noqa: F401  (the tone-corpus fit fixture)


def _model(**overrides: Any) -> Separator:
    torch.manual_seed(0)
    return build("convtasnet-test", **overrides).eval()


def _calibration() -> Any:
    g = torch.Generator().manual_seed(5)
    batches = [0.1 * torch.randn(2, 1, 1200, generator=g) for _ in range(2)]
    return lambda: iter(batches)


def _roundtrip(model: Separator, tmp_path: Path) -> Separator:
    loaded = load_artifact(save_artifact(model, tmp_path / "m"))
    assert shapes(loaded) == shapes(model)
    x = 0.1 * torch.randn(1, 1, 1001)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
    return loaded


# ----------------------------------------------------------------------------- structured


@pytest.mark.parametrize("overrides", [{}, {"norm": "cLN", "causal": True}, {"skip_chan": 0}])
def test_structured_prune_halves_the_tcn_channels_and_replays(
    overrides: dict[str, Any], tmp_path: Path
) -> None:
    model = _model(**overrides)
    # plant the answer: channels 0, 2, ..., 14 of every block get every slice 10x larger
    keep = torch.arange(0, 16, 2)
    with torch.no_grad():
        for b in model.tcn_blocks():
            b.in_conv.weight[keep] *= 10
            b.dconv.weight[keep] *= 10
            b.res_conv.weight[:, keep] *= 10
            if b.skip_conv is not None:
                b.skip_conv.weight[:, keep] *= 10
    result = run_pass(StructuredPrune(ratio=0.5, importance="l1"), model)
    pruned = result.model
    assert block_widths(model) == [16, 16, 16] and block_widths(pruned) == [8, 8, 8]
    assert result.stats["channels_removed"] == 0.5
    assert result.stats["after"]["macs_per_second"] < result.stats["before"]["macs_per_second"]
    assert pruned.n_params() < model.n_params() and result.record["replay"] is True
    for old, new in zip(model.tcn_blocks(), pruned.tcn_blocks(), strict=True):
        assert torch.equal(new.in_conv.weight, old.in_conv.weight[keep])
        assert torch.equal(new.in_conv.bias, old.in_conv.bias[keep])
        assert torch.equal(new.dconv.weight, old.dconv.weight[keep])
        assert torch.equal(new.norm1.gamma, old.norm1.gamma[:, keep])
        assert torch.equal(new.norm2.beta, old.norm2.beta[:, keep])
        assert torch.equal(new.res_conv.weight, old.res_conv.weight[:, keep])
        assert new.dconv.groups == 8
    x = 0.1 * torch.randn(2, 1, 777)
    with torch.no_grad():
        assert pruned(x).shape == (2, 2, 1, 777) and torch.isfinite(pruned(x)).all()
    _roundtrip(pruned, tmp_path)
    path = export_onnx(pruned, tmp_path / "p.onnx", example_seconds=0.25)
    assert np.isfinite(check_parity(pruned, path, lengths=[1000, 2345]))
    if pruned.causal:  # the stream still equals the offline output
        hop, delay = pruned.stream_hop, pruned.stream_delay
        mix = 0.1 * torch.randn(1, 1, 20 * hop + 3)
        state, outs = pruned.init_state(1, 1), []
        for start in range(0, mix.shape[-1], 3 * hop + 1):
            out, state = pruned.step(mix[..., start : start + 3 * hop + 1], state)
            outs.append(out)
        with torch.no_grad():
            offline = pruned(mix)
        streamed = torch.cat(outs, dim=-1)
        assert (streamed[..., delay:] - offline[..., : mix.shape[-1] - delay]).abs().max() < 1e-5


def test_structured_prune_rejects_what_it_cannot_prune() -> None:
    with pytest.raises(ValueError, match="MiTAS"):
        run_pass(StructuredPrune(), _model(share_pointwise="stack"))
    with pytest.raises(ValueError, match="Conv-TasNet"):
        run_pass(StructuredPrune(), build("liteunet-8k"))
    with pytest.raises(ValueError, match="fit"):
        run_pass(StructuredPrune(finetune_steps=5), _model())


def test_iterative_structured_prune_with_fine_tuning(fit_config: FitConfig) -> None:  # noqa: F811
    fit = make_fit(fit_config, progress=False)
    ctx = PassContext(fit=fit, evaluate=make_eval(fit))
    p = StructuredPrune(ratio=0.5, iterative_steps=2, finetune_steps=2, global_pruning=True)
    result = run_pass(p, _model(), ctx)
    assert sum(block_widths(result.model)) == 24
    assert [s["step"] for s in result.stats["steps"]] == [1, 2]
    assert "valid" in result.stats["steps"][0]
    fresh = _model()
    from edgesep.compress import replay

    assert shapes(replay(fresh, records_of(result.model))) == shapes(result.model)


# ----------------------------------------------------------------------------- unstructured


def test_unstructured_prune_reaches_the_ratio_globally_and_per_layer() -> None:
    model = _model()
    weights = {n: p for n, p in model.named_parameters() if p.dim() >= 2}
    glob = run_pass(UnstructuredPrune(ratio=0.6, scope="global"), model)
    total = sum(p.numel() for p in weights.values())
    assert abs(glob.stats["sparsity"] - 0.6) <= 1 / total + 1e-9
    # global: one threshold, so every surviving weight is at least every pruned one
    after = dict(glob.model.named_parameters())
    kept = torch.cat([weights[n][after[n] != 0].abs().flatten() for n in weights])
    dropped = torch.cat([weights[n][after[n] == 0].abs().flatten() for n in weights])
    assert kept.min() >= dropped.max()
    layer = run_pass(UnstructuredPrune(ratio=0.5, scope="layer"), model)
    for name, s in layer.stats["per_tensor"].items():
        assert abs(s - 0.5) <= 0.5 / weights[name].numel() + 1e-9, name
    thr = run_pass(UnstructuredPrune(threshold=0.1), model)
    for p in (q for n, q in thr.model.named_parameters() if n in weights):
        assert ((p == 0) | (p.abs() > 0.1)).all()
    assert glob.record["replay"] is False


def test_iterative_unstructured_prune_keeps_its_masks_through_fine_tuning(
    fit_config: FitConfig,  # noqa: F811
) -> None:
    fit = make_fit(fit_config, progress=False)
    p = UnstructuredPrune(ratio=0.5, scope="layer", iterative_steps=2, finetune_steps=3)
    result = run_pass(p, _model(), PassContext(fit=fit))
    assert [round(s["target"], 4) for s in result.stats["schedule"]] == [0.4375, 0.5]
    for name, s in result.stats["per_tensor"].items():
        assert s >= 0.49, name


# ----------------------------------------------------------------------------- clustering


@pytest.mark.parametrize("bits", [1, 3, 4, 5, 8])
def test_bit_packing_round_trips(bits: int) -> None:
    idx = torch.randint(0, 2**bits, (1001,), generator=torch.Generator().manual_seed(bits))
    packed = pack_bits(idx, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == packed_bytes(1001, bits)
    assert torch.equal(unpack_bits(packed, bits, 1001), idx)
    assert pack_bits(torch.tensor([1, 0, 1, 1, 0, 0, 0, 1]), 1).item() == 0b10001101


def test_kmeans_finds_separated_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([-1.0, -0.2, 0.3, 2.0])
    labels = torch.randint(0, 4, (2000,), generator=g)
    x = centres[labels] + 0.01 * torch.randn(2000, generator=g)
    centroids, idx = kmeans_1d(x, 2)
    means = torch.stack([x[labels == k].mean() for k in range(4)])
    assert torch.allclose(centroids.sort().values, means, atol=1e-5)
    assert torch.equal(centroids[idx], means[labels])


@pytest.mark.parametrize("raw_bits", [0, 8])
def test_cluster_shares_values_and_shrinks_the_bytes(raw_bits: int, tmp_path: Path) -> None:
    model = _model()
    result = run_pass(Cluster(bits=3, min_numel=64, raw_bits=raw_bits), model)
    out = result.model
    names = clusterable(model, 64)
    params = dict(out.named_parameters())
    assert names and all(torch.unique(params[n]).numel() <= 8 for n in names)
    assert result.stats["mean_bits"] == 3
    loaded = _roundtrip(out, tmp_path)
    fp32 = save_artifact(model, tmp_path / "fp32").stat().st_size
    packed = save_artifact(out, tmp_path / "packed").stat().st_size
    n_clustered = sum(params[n].numel() for n in names)
    n_raw = sum(p.numel() for n, p in out.named_parameters() if n not in names)
    raw = packed_bytes(n_raw, raw_bits) + 4 * 2**raw_bits if raw_bits else 4 * n_raw
    payload = sum(packed_bytes(params[n].numel(), 3) + 4 * 8 for n in names) + raw
    header = packed - payload
    assert 0 < header < 4096, header  # the file is the packed payload plus a small header
    assert 4 * n_clustered / packed_bytes(n_clustered, 3) > 10
    assert packed < fp32
    # the loaded model saves to the same bytes again (it stays palettised)
    again = save_artifact(loaded, tmp_path / "again").stat().st_size
    assert again == packed
    if raw_bits:  # a palettised model still exports (the exporter reads the live weights)
        path = export_onnx(loaded, tmp_path / "c.onnx", example_seconds=0.25)
        assert np.isfinite(check_parity(loaded, path, lengths=[1500]))


def test_cluster_budget_and_centroid_fine_tuning(fit_config: FitConfig) -> None:  # noqa: F811
    fit = make_fit(fit_config, progress=False)
    ctx = PassContext(fit=fit, calibration=_calibration())
    p = Cluster(budget_bits=3.0, candidate_bits=(2, 3, 4), min_numel=64, finetune_steps=3)
    result = run_pass(p, _model(), ctx)
    assert result.stats["mean_bits"] <= 3.0
    params = dict(result.model.named_parameters())
    for name, bits in result.stats["bits"].items():
        assert torch.unique(params[name]).numel() <= 2**bits
    assert set(result.stats["drop_db"]) == set(result.stats["bits"])


# ----------------------------------------------------------------------------- sensitivity


def test_budgeted_choices_follow_the_table() -> None:
    table = {
        "a": {"2": 5.0, "4": 0.1, "8": 0.0},  # very sensitive to 2 bits
        "b": {"2": 0.2, "4": 0.1, "8": 0.0},
    }
    numels = {"a": 100, "b": 100}
    assert choose_bits(table, numels, 8.0) == {"a": 8, "b": 8}
    assert choose_bits(table, numels, 4.0) == {"a": 4, "b": 4}
    assert choose_bits(table, numels, 3.0) == {"a": 4, "b": 2}
    ratios = {"a": {"0.5": 1.0, "0.9": 3.0}, "b": {"0.5": 0.1, "0.9": 0.2}}
    assert choose_ratios(ratios, numels, 0.45) == {"a": 0.0, "b": 0.9}
    t = torch.tensor([0.1, -0.5, 0.2, -0.05])
    assert magnitude_mask(t, 0.5).tolist() == [False, True, True, False]


def test_sensitivity_pass_tables_and_plot(tmp_path: Path) -> None:
    ctx = PassContext(calibration=_calibration(), work_dir=tmp_path)
    p = Sensitivity(ratios=(0.5, 0.9), bits=(2, 8), min_numel=64)
    result = run_pass(p, _model(), ctx)
    prune, bits = result.stats["prune_drop_db"], result.stats["bits_drop_db"]
    assert set(prune) == set(clusterable(_model(), 64))
    for row in prune.values():
        assert 0 <= row["0.5"] <= row["0.9"]
    for row in bits.values():
        assert row["2"] >= row["8"] >= 0
    assert (tmp_path / "sensitivity.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="calibration"):
        run_pass(p, _model(), PassContext())


# ----------------------------------------------------------------------------- sparsity, distill


def test_group_lasso_groups_are_the_pruning_groups() -> None:
    model = _model()
    block = model.tcn_blocks()[1]
    with torch.no_grad():  # zero every slice of channel 3 of block 1
        for t in (block.in_conv.weight[3], block.in_conv.bias[3:4], block.dconv.weight[3]):
            t.zero_()
        block.dconv.bias[3] = 0
        for norm in (block.norm1, block.norm2):
            norm.gamma[:, 3] = 0
            norm.beta[:, 3] = 0
        block.res_conv.weight[:, 3] = 0
        block.skip_conv.weight[:, 3] = 0
    norms = channel_group_norms(model)
    assert norms[1][3] == 0 and (norms[1][torch.arange(16) != 3] > 0).all()
    size = 8 + 1 + 3 + 1 + 4 + 8 + 8  # in_conv row+bias, dconv+bias, 2 norms x2, res, skip
    by_hand = block.in_conv.weight[0].norm() ** 2 + block.in_conv.bias[0] ** 2
    by_hand += block.dconv.weight[0].norm() ** 2 + block.dconv.bias[0] ** 2
    by_hand += sum(n.gamma[0, 0, 0] ** 2 + n.beta[0, 0, 0] ** 2 for n in (block.norm1, block.norm2))
    by_hand += block.res_conv.weight[:, 0].norm() ** 2 + block.skip_conv.weight[:, 0].norm() ** 2
    assert torch.allclose(norms[1][0], by_hand.sqrt() * math.sqrt(size))
    assert torch.allclose(group_lasso(model), torch.cat(norms).sum())


def test_sparsity_training_shrinks_the_groups(fit_config: FitConfig) -> None:  # noqa: F811
    fit = make_fit(fit_config, progress=False)
    result = run_pass(GroupSparsity(weight=0.05, steps=4), _model(), PassContext(fit=fit))
    assert result.stats["after"]["penalty"] < result.stats["before"]["penalty"]


def test_distill_fresh_student_starts_a_new_history(fit_config: FitConfig) -> None:  # noqa: F811
    fit = make_fit(fit_config, progress=False)
    teacher = _model()
    pruned = run_pass(StructuredPrune(0.5), teacher).model
    ctx = PassContext(fit=fit, teacher=teacher)
    cont = run_pass(Distill(steps=2, alpha=0.5), pruned, ctx)
    assert [r["pass"] for r in records_of(cont.model)] == ["prune-structured", "distill"]
    assert shapes(cont.model) == shapes(pruned)
    student = "convtasnet-test"
    fresh = run_pass(
        Distill(steps=2, student=student, student_overrides={"hid_chan": 8}), pruned, ctx
    )
    assert [r["pass"] for r in records_of(fresh.model)] == ["distill"]
    assert fresh.model.config.hid_chan == 8


# ----------------------------------------------------------------------------- every pass


SMALL = {
    "prune-structured": {"ratio": 0.25},
    "prune-unstructured": {"ratio": 0.3},
    "cluster": {"bits": 4, "min_numel": 64},
    "sensitivity": {"ratios": [0.5], "bits": [4], "min_numel": 64},
    "sparsity": {"steps": 2},
    "distill": {"steps": 2},
    "quantize-ptq": {},
    "fp16": {},
    "qat": {"steps": 2},
    "fqss": {"steps": 2},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_pass_conforms(name: str, fit_config: FitConfig, tmp_path: Path) -> None:  # noqa: F811
    from edgesep.compress import make_pass

    assert name in PASSES
    fit = make_fit(fit_config, progress=False)
    ctx = PassContext(fit=fit, calibration=make_calibration(fit, 1, 2), teacher=_model())
    result = run_pass(make_pass({"pass": name, **SMALL[name]}), _model(), ctx)
    x = 0.1 * torch.randn(2, 1, 999)
    with torch.no_grad():
        y = result.model(x)
    assert y.shape == (2, 2, 1, 999) and torch.isfinite(y).all()
    _roundtrip(result.model, tmp_path)


def test_every_registered_pass_is_covered() -> None:
    assert {n for n in PASSES.names() if not n.startswith("test-")} <= set(SMALL)
