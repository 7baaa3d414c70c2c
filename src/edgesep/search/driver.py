"""The search driver: an Optuna study whose trials build a config of the space, measure its cost,
refuse it before training when MACs or bytes break the budget, train it briefly (the proxy) and
score it by validation SI-SNRi.

- One objective (``si_snri``): TPE, maximised under the budgets as Optuna constraints, with
  Optuna's MedianPruner stopping trials whose intermediate score trails the median. Several
  objectives (``[si_snri, latency_ms]``): multi-objective TPE with the same constraints; Optuna's
  pruners are single-objective only, so those trials run to the end.
- Storage: an Optuna RDB URL (SQLite by default: ``OUT/study.db``). A re-run with the same storage
  and study name goes on where the last stopped, and ``--workers K`` processes, or commands on
  other machines pointed at one PostgreSQL/MySQL URL, share the study. The total is counted over
  all of them (Optuna's MaxTrialsCallback); K workers may finish up to K-1 trials beyond it.
- Trials of a killed process are marked failed by Optuna's heartbeat after ``grace_period`` s and
  tried again once.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from edgesep.errors import InputError
from edgesep.models.zoo_registry import build_from_dict
from edgesep.search.cost import (
    check,
    device_budgets,
    measured_cost,
    pre_training_reject,
    static_cost,
)
from edgesep.search.proxy import one_shot_score, proxy_train, recipe
from edgesep.search.space import Param, Space, load_space

HEARTBEAT_S = 30
GRACE_S = 120
POLL_S = 2.0


@dataclass(frozen=True)
class SearchOptions:
    out: Path
    n_trials: int
    storage: str = ""  # Optuna RDB URL; "" = sqlite:///OUT/study.db
    study: str = ""  # "" = the space's name
    device: str = ""  # a device profile whose budgets join the space's
    workers: int = 1

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.out / 'study.db').resolve()}"


def budgets_of(space: Space, device: str) -> dict[str, float]:
    """The space's budgets, tightened by the device profile's where both set one."""
    out = dict(space.budgets)
    for key, value in (device_budgets(device) if device else {}).items():
        out[key] = min(out.get(key, value), value)
    return out


def build_space_model(space: Space, values: dict[str, Any]) -> Any:
    return build_from_dict(space.family, space.config(values))


def load_supernet(space: Space) -> Any:
    """The elastic supernet of a one-shot space; its fields must be the supernet's."""
    from edgesep.models.elastic import ELASTIC_FIELDS, ElasticConvTasNet
    from edgesep.zoo import load

    supernet = load(space.proxy.supernet, allow_untrained=True)
    if not isinstance(supernet, ElasticConvTasNet):
        raise InputError(f"proxy.supernet {space.proxy.supernet!r} is not an elastic supernet")
    bad = [p.name for p in space.params if p.name not in ELASTIC_FIELDS]
    if bad:
        raise InputError(f"one-shot spaces search elastic fields {ELASTIC_FIELDS} only, not {bad}")
    return supernet


def _suggest(trial: Any, p: Param) -> Any:
    if p.choices:
        index = trial.suggest_categorical(p.name, list(range(len(p.choices))))
        return p.choices[index]
    if p.is_int:
        return trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)  # type: ignore[arg-type]
    return trial.suggest_float(p.name, float(p.low), float(p.high), step=p.step, log=p.log)  # type: ignore[arg-type]


def make_objective(space: Space, out: Path, budgets: dict[str, float]) -> Callable[[Any], Any]:
    import optuna

    keys = sorted(budgets)
    supernet = load_supernet(space) if space.proxy.supernet else None

    def objective(trial: Any) -> Any:
        values = {p.name: _suggest(trial, p) for p in space.params}
        trial.set_user_attr("config", values)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")

        def reject(why: str) -> optuna.TrialPruned:
            trial.set_user_attr("rejected", why)
            for key in keys:  # refused before measuring: infeasible for the sampler
                trial.set_constraint(key, 1.0)
            return optuna.TrialPruned(why)

        broken = space.violated(values)
        if broken:
            raise reject(f"constraints {broken}")
        try:
            model = (
                supernet.subnet(values).eval()
                if supernet is not None
                else build_space_model(space, values)
            )
        except ValueError as exc:
            raise reject(f"config: {exc}") from None
        figures = static_cost(model, space.cost)
        reason = pre_training_reject(figures, budgets)
        if reason is None:
            figures.update(measured_cost(model, space.cost, out / "trials" / f"{trial.number:04d}"))
            reason = pre_training_reject(figures, budgets)
        trial.set_user_attr("cost", figures)
        if reason:
            raise reject(f"budget: {reason}")
        margins = check(figures, budgets)
        for key in keys:  # a budget with no figure (RAM not measured) does not count
            trial.set_constraint(key, margins.get(key, 0.0))

        def report(step: int, score: float) -> None:
            if len(space.objectives) == 1:
                trial.report(score, step)
                if trial.should_prune():
                    trial.set_user_attr("pruned_at", {"step": step, "si_snri": score})
                    raise optuna.TrialPruned(f"step {step}: {score:.2f} dB")

        result = (
            one_shot_score(model, space.proxy)
            if supernet is not None
            else proxy_train(model, space.proxy, report)
        )
        trial.set_user_attr("proxy", result)
        objectives = {"si_snri": result["si_snri"], **figures}
        values_out = [float(objectives[k]) for k in space.objectives]
        return values_out[0] if len(values_out) == 1 else values_out

    return objective


def _storage(url: str) -> Any:
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    from sqlalchemy.exc import IntegrityError

    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                # heartbeats are experimental in Optuna since 2.8; their interface is what we use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=1
                    ),
                    **kwargs,
                )
        except IntegrityError:
            # another command created the schema at the same moment: it exists now
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def open_study(space: Space, opts: SearchOptions, budgets: dict[str, float], seed: int = 0) -> Any:
    import optuna

    # budgets reach the sampler through each trial's Trial.set_constraint
    sampler = optuna.samplers.TPESampler(seed=space.seed + seed)
    single = len(space.objectives) == 1
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=space.pruner.get("n_startup_trials", 5),
            n_warmup_steps=space.pruner.get("n_warmup_steps", 0),
        )
        if single
        else optuna.pruners.NopPruner()
    )
    directions: list[Any] = ["maximize", *("minimize" for _ in space.objectives[1:])]
    study = optuna.create_study(
        storage=_storage(opts.storage_url),
        study_name=opts.study or space.name,
        sampler=sampler,
        pruner=pruner,
        directions=directions,
        load_if_exists=True,
    )
    signature = {"objectives": list(space.objectives), "budgets": budgets, "base": space.base}
    previous = study.user_attrs.get("signature")
    if previous is None:
        study.set_user_attr("signature", signature)
    elif previous != signature:
        raise InputError(
            f"study {study.study_name!r} in {opts.storage_url} was started with {previous}, "
            f"not {signature}: choose another --study"
        )
    return study


def counted(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _optimize(
    study: Any, space: Space, opts: SearchOptions, budgets: dict[str, float], *callbacks: Any
) -> None:
    """Run trials until the study holds ``opts.n_trials`` (complete or pruned) in total."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if counted(study) >= opts.n_trials:
        return
    done = MaxTrialsCallback(opts.n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
    study.optimize(
        make_objective(space, opts.out, budgets),
        callbacks=[done, *callbacks],
        catch=(RuntimeError,),
        gc_after_trial=True,
    )


def run_worker(space_path: str, opts: SearchOptions, seed: int) -> None:
    """One process's share of the study: trials until the study holds ``n_trials`` in total."""
    space = load_space(space_path)
    budgets = budgets_of(space, opts.device)
    _optimize(open_study(space, opts, budgets, seed), space, opts, budgets)


def _best_line(study: Any) -> str:
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return "no complete trial yet"
    best = max(done, key=lambda t: t.values[0])
    return f"best {best.values[0]:.2f} dB (trial {best.number})"


def search(space_path: str | Path, opts: SearchOptions, console: Console | None = None) -> Any:
    """Run (or resume) the search; returns the study. Writes OUT/study.db unless --storage."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = console or Console()
    if opts.n_trials < 1 or opts.workers < 1:
        raise InputError("--trials and --workers must be at least 1")
    space = load_space(space_path)
    recipe(space.proxy)  # the data exists (or the smoke data is built) before any worker starts
    budgets = budgets_of(space, opts.device)
    opts.out.mkdir(parents=True, exist_ok=True)
    study = open_study(space, opts, budgets)
    start = counted(study)
    console.print(
        f"[bold]search[/] {space.name}: {space.family} from {space.base}, "
        f"{len(space.params)} fields, objectives {list(space.objectives)}, "
        f"budgets {budgets or 'none'}; "
        f"{start} of {opts.n_trials} trials done; storage {opts.storage_url}"
    )
    progress = Progress(
        TextColumn("[bold]trials"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=run_worker, args=(str(space_path), opts, k), daemon=False)
        for k in range(1, opts.workers)
    ]
    with progress:
        task = progress.add_task(_best_line(study), total=opts.n_trials, completed=start)
        for p in procs:
            p.start()

        def update(study_: Any, _trial: Any) -> None:
            progress.update(
                task, completed=min(counted(study_), opts.n_trials), description=_best_line(study_)
            )

        _optimize(study, space, opts, budgets, update)
        while any(p.is_alive() for p in procs):
            update(study, None)
            time.sleep(POLL_S)
        update(study, None)
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} search worker(s) failed (exit codes {failed})")
    return study
