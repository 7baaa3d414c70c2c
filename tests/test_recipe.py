"""Recipe options: learning-rate warm-up and cosine decay, and the capped SI-SNR loss."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from edgesep.config import replace
from edgesep.data.synth.tones import build_smoke_data
from edgesep.metrics.pit import capped_si_snr, pit_si_snr_loss
from edgesep.metrics.sisnr import si_snr
from edgesep.train.loop import TrainConfig
from edgesep.train.schedule import scheduled_lr


def _smoke_recipe(tmp_path: Path, **fields: Any) -> TrainConfig:
    """A recipe on the smoke data (built under ``tmp_path``), one CPU thread, batch 2."""
    from edgesep.data.dynamic import DynamicMixConfig, PoolConfig

    data = build_smoke_data(tmp_path / "smoke")
    return TrainConfig(
        model="convtasnet-test",
        data=DynamicMixConfig(
            pools=(PoolConfig(str(data / "corpus")),), segment_seconds=0.25, epoch_size=8
        ),
        valid_dirs=(str(data / "valid"),),
        out_dir=str(tmp_path / "run"),
        threads=1,
        device="cpu",
        batch_size=2,
        **fields,
    )


def test_warmup_then_cosine_to_min_lr() -> None:
    lrs = [scheduled_lr(k, 1e-3, "cosine", 10, 110, 1e-5) for k in range(111)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[60] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # half way down
    assert lrs[110] == pytest.approx(1e-5)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert scheduled_lr(500, 1e-3, "plateau", 10, 110, 0.0) == 1e-3
    with pytest.raises(ValueError, match="lr_schedule"):
        scheduled_lr(0, 1e-3, "step", 0, 10, 0.0)


def test_capped_si_snr_is_the_soft_minimum_of_si_snr_and_the_cap() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(4, 2, 800, generator=g)
    for noise in (3.0, 0.3, 0.03, 0.0003):
        est = ref + noise * torch.randn(4, 2, 800, generator=g)
        plain = si_snr(est, ref)
        # t / (e + tau t) = 1 / (e / t + tau): the cap adds tau to the inverse SNR
        expected = -10 * torch.log10(10 ** (-plain / 10) + 10 ** (-30 / 10))
        torch.testing.assert_close(capped_si_snr(est, ref, 30.0), expected, rtol=1e-4, atol=1e-3)
    assert float(capped_si_snr(ref, ref, 30.0).max()) == pytest.approx(30.0, abs=1e-3)
    est = ref.flip(1) + 0.1 * torch.randn(4, 2, 800, generator=g)  # permuted sources
    assert float(pit_si_snr_loss(est, ref, 30.0)) == pytest.approx(
        -float(capped_si_snr(est.flip(1), ref, 30.0).mean()), rel=1e-5
    )


def test_training_follows_the_cosine_schedule(tmp_path: Path) -> None:
    from edgesep.train.loop import train

    cfg = _smoke_recipe(
        tmp_path,
        max_steps=6,
        eval_every=2,
        lr_schedule="cosine",
        warmup_steps=2,
        snr_cap_db=30.0,
    )
    train(cfg, console=Console(quiet=True))
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    lrs = [e["lr"] for e in lines if "valid" in e]
    expected = [scheduled_lr(k, 1e-3, "cosine", 2, 6, 0.0) for k in (2, 4, 6)]
    assert lrs == pytest.approx(expected)
    assert all(math.isfinite(e["loss"]) for e in lines if "loss" in e)
    with pytest.raises(ValueError, match="lr_schedule"):
        train(replace(cfg, out_dir=str(tmp_path / "bad"), lr_schedule="steps"))


def test_resume_into_cosine_drops_the_plateau_halvings(tmp_path: Path) -> None:
    """A plateau run whose rate was halved, resumed under a cosine recipe, follows that curve."""
    from edgesep.train.loop import train

    cfg = _smoke_recipe(
        tmp_path,
        max_steps=4,
        eval_every=1,
        lr_patience=1,
        early_stop_patience=100,
        lr=1e-12,  # nothing improves after the first evaluation: every later one halves
    )
    train(cfg, console=Console(quiet=True))
    state = json.loads((tmp_path / "run" / "checkpoints" / "last" / "state.json").read_text())
    assert state["lr_scale"] < 1.0
    resumed = replace(cfg, lr=1e-3, lr_schedule="cosine", max_steps=8, eval_every=2)
    train(resumed, resume=True, console=Console(quiet=True))
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    lrs = [e["lr"] for e in lines if "valid" in e and e["step"] > 4]
    assert lrs == pytest.approx([scheduled_lr(k, 1e-3, "cosine", 0, 8, 0.0) for k in (6, 8)])


def test_stop_step_stops_early_on_the_full_schedule(tmp_path: Path) -> None:
    from edgesep.train.loop import train

    cfg = _smoke_recipe(
        tmp_path,
        max_steps=10,
        stop_step=3,
        eval_every=2,
        lr_schedule="cosine",
    )
    train(cfg, console=Console(quiet=True))
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [e for e in lines if "valid" in e]
    assert [e["step"] for e in evals] == [2, 3]  # the last step is validated
    assert evals[-1]["lr"] == pytest.approx(scheduled_lr(3, 1e-3, "cosine", 0, 10, 0.0))
