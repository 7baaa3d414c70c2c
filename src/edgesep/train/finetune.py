"""Fine-tuning a GIVEN model on the training data recipe: the ``fit`` that compression passes use.

:func:`make_fit` returns a :class:`~edgesep.compress.base.FitFn` (compress does not import train;
the CLI hands this in). It reuses the training loop's pieces (dynamic mixing, ``train_step``,
``validate``) on a model that already exists: Adam for ``steps`` steps of ``batch_size`` x
``segment_seconds``, validation every ``eval_every`` steps and at the end, and the
best-validating weights restored. ``on_step(model, step)`` runs after every optimiser step (a
pruning pass re-applies its masks there); ``loss`` replaces the uPIT SI-SNR task loss (e.g. a
distillation loss). :func:`make_eval` and :func:`make_calibration` give the matching validation
function and calibration-batch stream.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edgesep.data.dynamic import DynamicMixConfig, DynamicMixDataset
from edgesep.errors import InputError
from edgesep.models.base import Separator
from edgesep.train.loop import (
    ValidationSets,
    load_validation_sets,
    pit_task_loss,
    train_step,
    validate,
)

LossCallable = Callable[[Separator, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FitConfig:
    """The ``fit:`` section of a compression recipe (data as in a training recipe)."""

    data: DynamicMixConfig = field(default_factory=DynamicMixConfig)
    valid_dirs: tuple[str, ...] = ()
    valid_max_items: int = 40  # per validation set; 0 = all
    batch_size: int = 4
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    eval_every: int = 100
    threads: int = 1


class _Data:
    """Dataset and validation sets, loaded once and shared by every fit/eval of a recipe."""

    def __init__(self, cfg: FitConfig) -> None:
        self.cfg = cfg
        self._dataset: DynamicMixDataset | None = None
        self._valid: ValidationSets | None = None

    def dataset(self, seed: int) -> DynamicMixDataset:
        """The recipe's examples under ``seed`` (the corpora are loaded once, then shared)."""
        if self._dataset is None:
            self._dataset = DynamicMixDataset(self.cfg.data, seed=seed)
        out = copy.copy(self._dataset)
        out.seed = seed
        return out

    def valid(self) -> ValidationSets:
        if self._valid is None:
            if not self.cfg.valid_dirs:
                raise InputError(
                    "fit.valid_dirs is empty: fine-tuning keeps the best-validating weights"
                )
            self._valid = load_validation_sets(self.cfg.valid_dirs, self.cfg.valid_max_items)
        return self._valid


def batches(
    dataset: DynamicMixDataset, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (mix (B, 1, T), sources (B, S, T)) batches, epoch after epoch, in index order."""
    epoch = 0
    per_epoch = len(dataset) // batch_size
    if per_epoch < 1:
        raise InputError(
            f"data.epoch_size ({len(dataset)}) is smaller than batch_size ({batch_size})"
        )
    while True:
        dataset.set_epoch(epoch)
        for b in range(per_epoch):
            items = [dataset[b * batch_size + i] for i in range(batch_size)]
            yield torch.stack([m for m, _ in items]), torch.stack([s for _, s in items])
        epoch += 1


class Fit:
    """A :class:`~edgesep.compress.base.FitFn` over a :class:`FitConfig`; see the module doc."""

    def __init__(self, cfg: FitConfig, data: _Data | None = None, progress: bool = True) -> None:
        self.cfg = cfg
        self.data = data or _Data(cfg)
        self.progress = progress
        self.history: list[dict[str, Any]] = []

    def __call__(
        self,
        model: Separator,
        *,
        steps: int,
        loss: LossCallable | None = None,
        lr: float | None = None,
        on_step: Callable[[Separator, int], None] | None = None,
        seed: int = 0,
    ) -> Separator:
        cfg = self.cfg
        if steps < 1:
            return model
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(seed)
        valid = self.data.valid()
        device = next(model.parameters()).device
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr or cfg.lr, weight_decay=cfg.weight_decay)
        stream = batches(self.data.dataset(seed), cfg.batch_size)
        best, best_state, run = -math.inf, copy.deepcopy(model.state_dict()), []
        model.train()
        progress = Progress(
            TextColumn("[bold]fine-tune"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            disable=not self.progress,
        )
        with progress:
            task = progress.add_task("", total=steps)
            for step in range(1, steps + 1):
                mix, ref = next(stream)
                value = train_step(
                    model, opt, mix.to(device), ref.to(device), cfg.grad_clip, loss or pit_task_loss
                )
                if on_step is not None:
                    on_step(model, step)
                if step % cfg.eval_every == 0 or step == steps:
                    scores = validate(model, valid, device)
                    run.append({"step": step, "loss": float(value), "valid": scores})
                    if scores["mean"] > best:
                        best, best_state = scores["mean"], copy.deepcopy(model.state_dict())
                progress.update(
                    task, completed=step, description=f"loss {float(value):6.2f} best {best:.2f} dB"
                )
        model.load_state_dict(best_state)
        self.history.append({"steps": steps, "best_valid": best, "evals": run})
        return model.eval()


def make_fit(cfg: FitConfig, progress: bool = True) -> Fit:
    """A fine-tuning function for compression passes (see the module docstring)."""
    return Fit(cfg, progress=progress)


class Evaluate:
    """An :class:`~edgesep.compress.base.EvalFn` on a fit's validation sets (SI-SNRi, dB)."""

    def __init__(self, fit: Fit) -> None:
        self.fit = fit

    def __call__(self, model: Separator) -> dict[str, float]:
        was_training = model.training
        scores = validate(model, self.fit.data.valid(), next(model.parameters()).device)
        model.train(was_training)
        return scores


def make_eval(fit: Fit) -> Evaluate:
    """Validation SI-SNRi (dB) on ``fit``'s validation sets, per set and ``mean``."""
    return Evaluate(fit)


def make_calibration(
    fit: Fit, n_batches: int = 8, batch_size: int = 4, seed: int = 1234
) -> Callable[[], Iterator[torch.Tensor]]:
    """Calibration mixtures (B, 1, T) drawn from the training recipe with a fixed seed."""

    def calibration() -> Iterator[torch.Tensor]:
        dataset = fit.data.dataset(seed)
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(dataset))[: n_batches * batch_size]
        for b in range(n_batches):
            items = [dataset[int(i)][0] for i in idx[b * batch_size : (b + 1) * batch_size]]
            if items:
                yield torch.stack(items)

    return calibration
