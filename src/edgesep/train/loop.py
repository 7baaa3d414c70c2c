"""The training loop: uPIT SI-SNR on dynamically mixed speech (or, with ``music`` set, a
fixed-order thresholded SDR per named stem on segments of multitrack songs; see
:mod:`edgesep.train.music`), with validation, early stopping, learning-rate halving on plateaus,
periodic checkpoints and exact resume.

Progress is shown with rich and logged as JSON lines (``OUT/log.jsonl``). A SIGTERM or Ctrl-C
saves a checkpoint before exiting, and checkpoints are also written every
``checkpoint_minutes``; ``resume=True`` continues from ``OUT/checkpoints/last`` with the same data
stream (examples are seeded by (seed, epoch, index)).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader

from edgesep.config import to_dict
from edgesep.data.cards import read_card
from edgesep.data.datasets import MixtureDataset
from edgesep.data.dynamic import DynamicMixConfig, DynamicMixDataset
from edgesep.data.musicmix import MusicMixConfig, MusicMixDataset
from edgesep.errors import InputError
from edgesep.metrics.pit import best_permutation, pit_si_snr_loss
from edgesep.metrics.sisnr import si_snr
from edgesep.models.artifact import save_artifact, software_versions
from edgesep.models.base import Separator
from edgesep.models.elastic import ElasticConvTasNet
from edgesep.models.zoo_registry import build
from edgesep.sysinfo import cpu_description
from edgesep.train.checkpoint import (
    config_changes,
    load_checkpoint,
    previous_config,
    save_checkpoint,
)
from edgesep.train.distributed import (
    World,
    any_rank,
    barrier,
    batch_indices,
    close_world,
    init_world,
)
from edgesep.train.elastic import sandwich_loss
from edgesep.train.music import load_music_validation, thresholded_sdr_loss, validate_music
from edgesep.train.schedule import scheduled_lr


@dataclass(frozen=True)
class TrainConfig:
    model: str = "convtasnet-tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    data: DynamicMixConfig = field(default_factory=DynamicMixConfig)
    # music demixing instead of speech: songs in the MUSDB18-HQ layout, fixed-order stems
    music: MusicMixConfig | None = None
    valid_dirs: tuple[str, ...] = ()  # mixture folders (mix/ s1/ s2/; music: MUSDB18 roots)
    valid_seconds: float = 0.0  # music: validate on the middle N seconds of each song (0: all)
    out_dir: str = "runs/train"
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    max_steps: int = 4000
    # > 0: stop (validated) at this step, leaving the schedule's max_steps as it is: how a run
    # that was stopped by hand is reproduced to the same step
    stop_step: int = 0
    max_minutes: float = 0.0  # wall-clock limit; 0 = none
    # limit on the process's CPU time (all threads): fair budgets for runs that share a machine
    max_cpu_minutes: float = 0.0
    eval_every: int = 250
    checkpoint_minutes: float = 5.0
    lr_patience: int = 2  # evals without improvement before halving the learning rate
    lr_schedule: str = "plateau"  # plateau (halve on plateaus) | cosine (to min_lr at max_steps)
    warmup_steps: int = 0
    min_lr: float = 0.0
    snr_cap_db: float = 0.0  # > 0: the capped (thresholded) SI-SNR loss
    early_stop_patience: int = 6  # evals without improvement before stopping
    valid_max_items: int = 0  # 0 = all
    # an elastic supernet trains by the sandwich rule (edgesep.train.elastic)
    elastic_random_subnets: int = 2
    elastic_distill_weight: float = 0.5


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


ValidationSets = dict[str, list[tuple[torch.Tensor, torch.Tensor]]]


def load_validation_sets(dirs: tuple[str, ...], max_items: int) -> ValidationSets:
    """(mix (T,), sources (S, T)) of every validation mixture, read once per run."""
    sets: ValidationSets = {}
    for d in dirs:
        ds = MixtureDataset(d, max_items=max_items or None)
        items = (ds[i] for i in range(len(ds)))
        sets[Path(d).name] = [
            (torch.from_numpy(it["mix"]), torch.from_numpy(it["sources"])) for it in items
        ]
    return sets


def pit_task_loss(
    model: Separator, mix: torch.Tensor, ref: torch.Tensor, est: torch.Tensor
) -> torch.Tensor:
    """The training objective as a loss of (model, mix, sources, est): negative uPIT SI-SNR."""
    return pit_si_snr_loss(est, ref)


def music_task_loss(
    model: Separator, mix: torch.Tensor, ref: torch.Tensor, est: torch.Tensor
) -> torch.Tensor:
    """The fixed-order (no permutation) thresholded SDR loss of named stems."""
    return thresholded_sdr_loss(est, ref, mix)


def train_step(
    model: Separator,
    opt: torch.optim.Optimizer,
    mix: torch.Tensor,
    ref: torch.Tensor,
    grad_clip: float,
    loss_fn: Callable[
        [Separator, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
    ] = pit_task_loss,
    mono: bool = True,
) -> torch.Tensor:
    """One optimiser step on a batch; returns the (detached) loss.

    Shape: mix (B, 1, T), ref (B, S, T); with ``mono=False`` mix (B, C, T), ref (B, S, C, T)
    """
    est = model(mix)
    if mono:
        est = est[:, :, 0]
    loss = loss_fn(model, mix, ref, est)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss.detach()


@torch.no_grad()
def validate(model: Separator, sets: ValidationSets, device: torch.device) -> dict[str, float]:
    """Mean SI-SNRi (dB) per validation set and over all, on whole utterances."""
    model.eval()
    out: dict[str, float] = {}
    all_scores: list[float] = []
    for name, items in sets.items():
        scores = []
        for mix_cpu, ref_cpu in items:
            mix, ref = mix_cpu.to(device)[None, None], ref_cpu.to(device)[None]
            est = model(mix)[:, :, 0]
            _, best = best_permutation(est, ref, si_snr)
            scores.append(float(best - si_snr(mix, ref).mean()))
        out[name] = float(np.mean(scores))
        all_scores += scores
    out["mean"] = float(np.mean(all_scores))
    model.train()
    return out


def run_card(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """What a trained model's card says of its run: config, data, machine, software."""
    return {
        "training": {
            "config": to_dict(cfg),
            "hardware": cpu_description(),
            "threads": cfg.threads,
            "device": str(device),
            "seed": cfg.seed,
        },
        "data_cards": {
            root: {
                f: read_card(root).get(f)
                for f in ("kind", "seed", "counts", "content_hash", "duration_seconds")
            }
            for root in ([cfg.music.root] if cfg.music else [p.root for p in cfg.data.pools])
        },
        "software": software_versions(),
    }


def train(cfg: TrainConfig, resume: bool = False, console: Console | None = None) -> Path:
    """Train and return the path of the best model artifact (``OUT/best``)."""
    console = console or Console()
    if not cfg.valid_dirs:
        raise InputError("valid_dirs is empty: training keeps the model that validates best")
    epoch_size = cfg.music.epoch_size if cfg.music else cfg.data.epoch_size
    if epoch_size < cfg.batch_size:
        raise InputError(
            f"data.epoch_size ({epoch_size}) is smaller than batch_size ({cfg.batch_size})"
        )
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    world = init_world(_device(cfg.device))
    try:
        return _train(cfg, resume, console, world)
    finally:
        close_world(world)


def _train(cfg: TrainConfig, resume: bool, console: Console, world: World) -> Path:
    device = world.device
    scheduled_lr(0, cfg.lr, cfg.lr_schedule, cfg.warmup_steps, cfg.max_steps, cfg.min_lr)  # checks

    def pit_loss(
        model: Separator, mix: torch.Tensor, ref: torch.Tensor, est: torch.Tensor
    ) -> torch.Tensor:
        return pit_si_snr_loss(est, ref, cfg.snr_cap_db)

    out = Path(cfg.out_dir)
    if resume and not (out / "checkpoints" / "last").exists():
        raise FileNotFoundError(
            f"{out / 'checkpoints' / 'last'}: no checkpoint to resume from; "
            "run without --resume to start a new run"
        )
    out.mkdir(parents=True, exist_ok=True)
    model: Separator = build(cfg.model, **cfg.model_overrides).to(device)
    # DDP averages the gradients of all ranks in backward; every rank starts from rank 0's weights.
    # Some configs leave a parameter out of the loss (the last TCN block's residual conv when a
    # skip path makes the mask), which DDP must be told to look for.
    net: torch.nn.Module = (
        torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        if world.distributed
        else model
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dataset: DynamicMixDataset | MusicMixDataset = (
        MusicMixDataset(cfg.music, seed=cfg.seed)
        if cfg.music
        else DynamicMixDataset(cfg.data, seed=cfg.seed)
    )
    state: dict[str, Any] = {
        "step": 0,
        "best": -math.inf,
        "bad_evals": 0,
        "lr_bad": 0,
        "lr": cfg.lr,
        "train_seconds": 0.0,
        "cpu_seconds": 0.0,
        "history": [],
    }
    last = out / "checkpoints" / "last"
    if resume and last.exists():
        state = load_checkpoint(last, model, opt)
        console.print(f"resumed from {last} at step {state['step']}")
        changes = config_changes(previous_config(out), to_dict(cfg))
        if changes:
            # a resumed run may change its recipe (e.g. batch shape); the card keeps the record
            state.setdefault("config_changes", []).append({"step": state["step"], **changes})
            console.print(f"config changed on resume: {changes}")
            if changes.keys() & _SCHEDULE_FIELDS:
                # a new learning-rate recipe starts afresh: no plateau halvings carried over
                state["lr"], state["lr_scale"], state["lr_bad"] = cfg.lr, 1.0, 0
                for group in opt.param_groups:
                    group["lr"] = cfg.lr
                _set_lr(opt, cfg, state)
    elif (out / "log.jsonl").exists():
        raise FileExistsError(
            f"{out}: holds a previous run; pass --resume or choose another out_dir"
        )
    barrier(world)  # every rank has checked the folder before rank 0 writes to it
    if world.is_main:
        (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    card = run_card(cfg, device)
    valid_sets = (
        load_music_validation(cfg.valid_dirs, cfg.valid_max_items, cfg.valid_seconds)
        if cfg.music
        else load_validation_sets(cfg.valid_dirs, cfg.valid_max_items)
    )
    segment = cfg.music.segment_seconds if cfg.music else cfg.data.segment_seconds
    if not world.is_main:
        console = Console(quiet=True)
    ranks = f" x {world.size} ranks" if world.distributed else ""
    console.print(
        f"[bold]{cfg.model}[/] {model.n_params():,} params on {device} "
        f"({cfg.threads} threads{ranks}), batch {cfg.batch_size}{ranks} x {segment} s"
    )

    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def checkpoint() -> None:
        if world.is_main:
            save_checkpoint(last, model, opt, state, card)

    steps_per_epoch = len(dataset) // (cfg.batch_size * world.size)
    if steps_per_epoch < 1:
        raise InputError(
            f"data.epoch_size ({len(dataset)}) is smaller than one step of {world.size} ranks x "
            f"batch_size {cfg.batch_size}"
        )
    task_loss: Callable[[Separator, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    task_loss = pit_loss
    if isinstance(model, ElasticConvTasNet):
        task_loss = sandwich_loss(
            lambda: int(state["step"]),
            cfg.seed,
            cfg.elastic_random_subnets,
            cfg.elastic_distill_weight,
            cfg.snr_cap_db,
        )
    t_last_ckpt = time.time()
    t_start = time.time() - state["train_seconds"]
    t_cpu_start = time.process_time() - state.get("cpu_seconds", 0.0)
    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    )
    done_reason = "max_steps"
    end = min(cfg.max_steps, cfg.stop_step) if cfg.stop_step > 0 else cfg.max_steps
    try:
        log_path = out / "log.jsonl" if world.is_main else Path(os.devnull)
        with log_path.open("a") as log, progress:
            task = progress.add_task("", total=end, completed=state["step"])
            while state["step"] < end and not stop["now"]:
                epoch, offset = divmod(state["step"], steps_per_epoch)
                dataset.set_epoch(epoch)
                sampler = [
                    i
                    for k in range(offset, steps_per_epoch)
                    for i in batch_indices(k, cfg.batch_size, world)
                ]
                loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler)
                for mix, ref in loader:
                    # music: (B, C, T) -> (B, S, C, T), stems in a fixed order
                    loss = train_step(
                        cast(Separator, net),
                        opt,
                        mix.to(device),
                        ref.to(device),
                        cfg.grad_clip,
                        music_task_loss if cfg.music else task_loss,
                        mono=not cfg.music,
                    )
                    state["step"] += 1
                    _set_lr(opt, cfg, state)
                    state["train_seconds"] = time.time() - t_start
                    state["cpu_seconds"] = time.process_time() - t_cpu_start
                    progress.update(
                        task,
                        completed=state["step"],
                        description=f"loss {loss.item():6.2f} best {state['best']:.2f} dB",
                    )
                    line = {"step": state["step"], "loss": round(loss.item(), 4)}
                    log.write(json.dumps({**line, "time": round(time.time(), 1)}) + "\n")
                    if state["step"] % 50 == 0:
                        log.flush()  # so the run can be watched (tail -f log.jsonl)
                    time_up = (
                        bool(cfg.max_minutes) and state["train_seconds"] > cfg.max_minutes * 60
                    ) or (
                        bool(cfg.max_cpu_minutes)
                        and state["cpu_seconds"] > cfg.max_cpu_minutes * 60
                    )
                    # every rank stops at the same step: time and signals are shared
                    time_up = any_rank(time_up, world)
                    stop["now"] = any_rank(stop["now"], world)
                    # the last weights of a run are always validated, whatever ends it
                    last_step = time_up or state["step"] == end
                    if state["step"] % cfg.eval_every == 0 or last_step:
                        _evaluate_and_keep(
                            model, opt, cfg, state, valid_sets, out, card, console, log, world
                        )
                        checkpoint()
                        t_last_ckpt = time.time()
                        if state["bad_evals"] >= cfg.early_stop_patience:
                            done_reason = "early_stop"
                            stop["now"] = True
                    elif any_rank(time.time() - t_last_ckpt > cfg.checkpoint_minutes * 60, world):
                        checkpoint()
                        t_last_ckpt = time.time()
                    if time_up:
                        over_cpu = bool(cfg.max_cpu_minutes) and (
                            state["cpu_seconds"] > cfg.max_cpu_minutes * 60
                        )
                        done_reason = "max_cpu_minutes" if over_cpu else "max_minutes"
                        stop["now"] = True
                    if stop["now"] or state["step"] >= end:
                        break
        if stop["now"] and done_reason == "max_steps":
            done_reason = "interrupted"
        elif done_reason == "max_steps" and end < cfg.max_steps:
            done_reason = "stop_step"
        checkpoint()
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
    console.print(
        f"stopped ({done_reason}) at step {state['step']}; best valid {_metric(cfg)} "
        f"{state['best']:.2f} dB; checkpoint {last}"
    )
    return out / "best"


_SCHEDULE_FIELDS = {"lr", "lr_schedule"}  # a change of either resets the plateau halvings


def _set_lr(opt: torch.optim.Optimizer, cfg: TrainConfig, state: dict[str, Any]) -> None:
    """The next step's learning rate: the schedule's, times the plateau halvings so far."""
    base = scheduled_lr(
        state["step"], cfg.lr, cfg.lr_schedule, cfg.warmup_steps, cfg.max_steps, cfg.min_lr
    )
    lr = base * state.get("lr_scale", 1.0)
    if cfg.lr_schedule != "plateau" or cfg.warmup_steps:
        state["lr"] = lr
        for group in opt.param_groups:
            group["lr"] = lr


def _evaluate_and_keep(
    model: Separator,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    state: dict[str, Any],
    valid_sets: ValidationSets,
    out: Path,
    card: dict[str, Any],
    console: Console,
    log: Any,
    world: World,
) -> None:
    device = next(model.parameters()).device
    validator = validate_music if cfg.music else validate
    scores = validator(model, valid_sets, device)
    entry = {
        "step": state["step"],
        "valid": scores,
        "lr": state["lr"],
        "minutes": round(state["train_seconds"] / 60, 2),
        "cpu_minutes": round(state.get("cpu_seconds", 0.0) / 60, 2),
    }
    state["history"].append(entry)
    log.write(json.dumps(entry) + "\n")
    log.flush()
    if scores["mean"] > state["best"] + 0.01:
        state["best"], state["bad_evals"], state["lr_bad"] = scores["mean"], 0, 0
        progress = {"step": state["step"], "minutes": entry["minutes"]}
        progress["config_changes"] = state.get("config_changes", [])
        best_card = {
            **card,
            "training": {**card["training"], **progress},
            "metrics": {("valid_usdr_db" if cfg.music else "valid_si_snri_db"): scores},
        }
        if world.is_main:
            save_artifact(model, out / "best", best_card)
    else:
        state["bad_evals"] += 1
        state["lr_bad"] += 1
        if state["lr_bad"] >= cfg.lr_patience and cfg.lr_schedule == "plateau":
            state["lr"] /= 2
            state["lr_scale"] = state.get("lr_scale", 1.0) / 2
            state["lr_bad"] = 0
            for group in opt.param_groups:
                group["lr"] = state["lr"]
    console.print(
        f"step {state['step']}: valid {_metric(cfg)} "
        + ", ".join(f"{k} {v:.2f}" for k, v in scores.items())
        + f" dB (best {state['best']:.2f}, lr {state['lr']:.2e})"
    )


def _metric(cfg: TrainConfig) -> str:
    return "uSDR" if cfg.music else "SI-SNRi"
