"""Proxy training: a fixed number of steps of the project's recipe (its data, batch, optimiser
and loss), validated every ``eval_every`` steps on the first ``valid_max_items`` mixtures of the
recipe's validation sets. Every trial of a search sees the same examples in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from edgesep.config import apply_overrides, from_dict, load_file
from edgesep.data.dynamic import DynamicMixDataset
from edgesep.errors import InputError
from edgesep.metrics.pit import pit_si_snr_loss
from edgesep.models.base import Separator
from edgesep.search.space import Proxy
from edgesep.train.loop import TrainConfig, load_validation_sets, train_step, validate


def recipe(proxy: Proxy) -> TrainConfig:
    """The proxy's training recipe; its smoke data is built first when asked for and missing."""
    if proxy.smoke_data and not Path(proxy.smoke_data).exists():
        from edgesep.data.synth.tones import build_smoke_data

        build_smoke_data(Path(proxy.smoke_data), seed=0)
    cfg = from_dict(TrainConfig, apply_overrides(load_file(proxy.recipe), []))
    if cfg.music:
        raise InputError(f"{proxy.recipe}: the search trains speech recipes only")
    missing = [p.root for p in cfg.data.pools if not Path(p.root).exists()]
    missing += [d for d in cfg.valid_dirs if not Path(d).exists()]
    if missing:
        raise FileNotFoundError(
            f"{proxy.recipe}: missing data {missing}; build it first (make data, or the command "
            "named in the recipe)"
        )
    return cfg


def proxy_train(
    model: Separator,
    proxy: Proxy,
    report: Callable[[int, float], None] = lambda step, score: None,
) -> dict[str, Any]:
    """Train ``model`` in place for ``proxy.steps`` steps; ``report(step, valid SI-SNRi)`` after
    each validation may raise to stop the trial (Optuna's TrialPruned). Returns the last score."""
    cfg = recipe(proxy)
    previous = torch.get_num_threads()
    torch.set_num_threads(proxy.threads)
    torch.manual_seed(cfg.seed)
    try:
        valid = load_validation_sets(cfg.valid_dirs, proxy.valid_max_items)
        dataset = DynamicMixDataset(cfg.data, seed=cfg.seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        model.train()
        step, epoch, score, history = 0, 0, float("nan"), []
        while step < proxy.steps:
            dataset.set_epoch(epoch)
            for mix, ref in DataLoader(dataset, batch_size=cfg.batch_size, drop_last=True):
                train_step(
                    model,
                    opt,
                    mix,
                    ref,
                    cfg.grad_clip,
                    lambda m, x, r, e: pit_si_snr_loss(e, r, cfg.snr_cap_db),
                )
                step += 1
                if step % proxy.eval_every == 0 or step == proxy.steps:
                    score = validate(model, valid, torch.device("cpu"))["mean"]
                    history.append({"step": step, "si_snri": score})
                    report(step, score)
                if step >= proxy.steps:
                    break
            epoch += 1
        return {"si_snri": score, "steps": step, "history": history}
    finally:
        torch.set_num_threads(previous)


def one_shot_score(model: Separator, proxy: Proxy) -> dict[str, Any]:
    """Validation SI-SNRi of ``model`` as it is (a subnet with its supernet's weights)."""
    cfg = recipe(proxy)
    valid = load_validation_sets(cfg.valid_dirs, proxy.valid_max_items)
    score = validate(model, valid, torch.device("cpu"))["mean"]
    return {"si_snri": score, "steps": 0, "history": [], "one_shot": proxy.supernet}
