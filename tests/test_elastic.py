"""The elastic Conv-TasNet: subnet extraction equals the supernet's forward with the same choice,
keeps the shapes of a Conv-TasNet built from the subnet's config, trains by the sandwich rule,
and an extracted subnet exports and runs in the torch-free runtime."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesep.metrics.pit import pit_si_snr_loss
from edgesep.models.convtasnet import ConvTasNet
from edgesep.models.elastic import ElasticConvTasNet
from edgesep.models.zoo_registry import build
from edgesep.train.elastic import sandwich_loss


def _supernet(seed: int = 0) -> ElasticConvTasNet:
    torch.manual_seed(seed)
    model = build("convtasnet-elastic-test")
    assert isinstance(model, ElasticConvTasNet)
    return model


def test_every_subnet_extracts_to_the_supernets_own_forward() -> None:
    model = _supernet().eval()
    mix = torch.randn(2, 1, 3000, generator=torch.Generator().manual_seed(1))
    choices = model.all_choices()
    assert len(choices) == 3 * 2 * 2 * 2
    with torch.no_grad():
        for choice in choices:
            sub = model.subnet(choice).eval()
            fresh = ConvTasNet(model.subnet_config(choice))
            assert {k: v.shape for k, v in sub.state_dict().items()} == {
                k: v.shape for k, v in fresh.state_dict().items()
            }
            torch.testing.assert_close(sub(mix), model.forward_subnet(mix, choice), rtol=0, atol=0)
        torch.testing.assert_close(model(mix), model.forward_subnet(mix, model.largest_choice()))
    small = model.subnet(model.smallest_choice())
    assert small.n_params() < model.n_params() / 3


def test_subnets_share_the_supernets_leading_channels_and_centre_taps() -> None:
    model = _supernet()
    choice = {"n_blocks": 2, "hid_chan": 8, "bn_chan": 4, "conv_kernel_size": 3}
    sub = model.subnet(choice)
    big = model.net.blocks
    # block (repeat 1, block 0) of the subnet is block 3 of the supernet (3 blocks per repeat)
    torch.testing.assert_close(sub.blocks[2].in_conv.weight, big[3].in_conv.weight[:8, :4])
    torch.testing.assert_close(sub.blocks[2].dconv.weight, big[3].dconv.weight[:8, :, 1:4])
    # gradients of a subnet reach only the weights it uses
    model.train()
    model.forward_subnet(torch.randn(1, 1, 2000), choice).square().mean().backward()
    grad = big[3].in_conv.weight.grad
    assert grad is not None and grad[:8, :4].abs().sum() > 0
    assert grad[8:].abs().sum() == 0 and grad[:, 4:].abs().sum() == 0
    assert big[2].in_conv.weight.grad is None  # the third block of a repeat is not in the subnet


def test_a_causal_supernets_subnets_stay_causal_and_extract_exactly() -> None:
    from tests.test_runtime_adaptive import causal_supernet

    model = causal_supernet()
    choice = {"n_blocks": 2, "hid_chan": 8, "bn_chan": 4, "conv_kernel_size": 3}
    sub = model.subnet(choice).eval()
    assert sub.config.causal and model.lookahead_samples == sub.lookahead_samples
    # a causal 3-tap kernel keeps the supernet's 3 most recent taps of 5
    torch.testing.assert_close(
        sub.blocks[0].dconv.weight, model.net.blocks[0].dconv.weight[:8, :, 2:]
    )
    mix = torch.randn(1, 1, 3000, generator=torch.Generator().manual_seed(2))
    later = mix.clone()
    later[..., 2000:] = torch.randn(1, 1, 1000)
    with torch.no_grad():
        torch.testing.assert_close(sub(mix), model.forward_subnet(mix, choice), rtol=0, atol=0)
        t0 = 2000 - sub.lookahead_samples
        torch.testing.assert_close(sub(mix)[..., :t0], sub(later)[..., :t0])
        assert not torch.allclose(sub(mix)[..., 2100:], sub(later)[..., 2100:])


def test_a_choice_outside_the_space_is_refused() -> None:
    model = _supernet()
    with pytest.raises(ValueError, match="hid_chan=12 is not one of"):
        model.subnet({"hid_chan": 12})
    with pytest.raises(ValueError, match="unknown elastic fields"):
        model.subnet({"width": 8})


def test_sandwich_loss_sums_the_largest_and_the_subnets_terms() -> None:
    model = _supernet().train()
    mix = torch.randn(2, 1, 2000, generator=torch.Generator().manual_seed(2))
    ref = torch.randn(2, 2, 2000, generator=torch.Generator().manual_seed(3))
    est = model(mix)[:, :, 0]
    loss = sandwich_loss(lambda: 0, seed=0, n_random=0, distill_weight=0.25)(model, mix, ref, est)
    small = model.forward_subnet(mix, model.smallest_choice())[:, :, 0]
    expected = (
        pit_si_snr_loss(est, ref)
        + 0.75 * pit_si_snr_loss(small, ref)
        + 0.25 * pit_si_snr_loss(small, est.detach())
    ) / 2
    torch.testing.assert_close(loss, expected)
    # the random subnets of a step depend on (seed, step) only: a resumed run draws the same
    draws = [model.random_choice(random.Random(7 * 1_000_003 + 5)) for _ in range(2)]
    assert draws[0] == draws[1]


def test_sandwich_training_runs_through_the_training_loop(tmp_path: Path) -> None:
    from edgesep.config import from_dict
    from edgesep.data.synth.tones import build_smoke_data
    from edgesep.train.loop import TrainConfig, train

    data = build_smoke_data(tmp_path / "smoke")
    cfg = from_dict(
        TrainConfig,
        {
            "model": "convtasnet-elastic-test",
            "data": {
                "pools": [{"root": str(data / "corpus"), "split": "train"}],
                "segment_seconds": 0.25,
                "epoch_size": 8,
            },
            "valid_dirs": [str(data / "valid")],
            "out_dir": str(tmp_path / "run"),
            "threads": 1,
            "device": "cpu",
            "batch_size": 2,
            "max_steps": 3,
            "eval_every": 3,
        },
    )
    torch.manual_seed(0)
    before = build("convtasnet-elastic-test").subnet({"n_blocks": 1, "hid_chan": 8, "bn_chan": 4})
    best = train(cfg)
    from edgesep import load_model

    trained = load_model(str(best) + ".safetensors")
    assert isinstance(trained, ElasticConvTasNet)
    after = trained.subnet({"n_blocks": 1, "hid_chan": 8, "bn_chan": 4})
    moved = [
        (a - b).abs().max().item()
        for a, b in zip(after.state_dict().values(), before.state_dict().values(), strict=True)
    ]
    assert max(moved) > 0, "the smallest subnet's weights did not train"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3]


def test_an_extracted_subnet_runs_in_the_runtime(tmp_path: Path) -> None:
    from edgesep.export import export_onnx
    from edgesep.runtime import OfflineSession

    model = _supernet().eval()
    sub = model.subnet({"n_blocks": 2, "hid_chan": 8, "bn_chan": 8, "conv_kernel_size": 3}).eval()
    path = export_onnx(sub, tmp_path / "sub.onnx")
    mix = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1
    got = OfflineSession(str(path)).separate(mix, 8000)
    want = sub.separate(mix, 8000)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_fit_picks_the_largest_subnet_within_the_device_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from edgesep.bench.devices import PROFILE_DIR
    from edgesep.search import fit

    model = _supernet().eval()
    # on this machine the test supernet's largest subnet fits: measured for real
    result = fit.fit_subnet(model, "this-machine")
    assert result["choice"] == model.largest_choice() and len(result["tried"]) == 1
    assert result["verdict"]["kind"] == "measured"

    # a device whose size budget the bigger subnets break (bytes = 4 x params, as if measured)
    def fake_measured(sub: torch.nn.Module, cost: object, work: Path) -> dict:
        n = sum(p.numel() for p in sub.parameters())
        return {"bytes": 4 * n, "rtf": 0.01, "algorithmic_ms": 1000.0, "compute_p99_ms": 10.0}

    monkeypatch.setattr(fit, "measured_cost", fake_measured)
    device = yaml.safe_load((PROFILE_DIR / "rpi5-cortex-a76.yaml").read_text())
    sizes = {str(c): 4 * model.subnet(c).n_params() for c in model.all_choices()}
    limit = sorted(sizes.values())[len(sizes) // 2]
    device["budgets"]["model_mb"] = limit / 1e6
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(device))
    result = fit.fit_subnet(model, str(path))
    fitting = [c for c in model.all_choices() if sizes[str(c)] <= limit]
    macs = {
        str(c): fit.static_cost(model.subnet(c), fit.Cost())["macs_per_second"] for c in fitting
    }
    assert sizes[str(result["choice"])] <= limit
    assert macs[str(result["choice"])] == max(macs.values())
    device["budgets"]["model_mb"] = 1e-6
    path.write_text(yaml.safe_dump(device))
    with pytest.raises(ValueError, match="no subnet"):
        fit.fit_subnet(model, str(path))
