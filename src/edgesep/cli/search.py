"""``edgesep search SPACE.yaml -o OUT`` (hardware-aware architecture search) and
``edgesep search --train-best OUT RECIPE.yaml`` (train the chosen config with the full recipe)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgesep.cli.common import console, fail, user_errors


def _need_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ModuleNotFoundError:
        fail("edgesep search needs optuna: pip install 'edgesep[nas]'")


def _chosen(out: Path, trial: int | None) -> dict[str, Any]:
    path = out / "search.json"
    if not path.is_file():
        fail(f"{path}: no search results (run edgesep search SPACE.yaml -o {out} first)")
    results = json.loads(path.read_text())
    rows = json.loads((out / "trials.json").read_text())
    if trial is not None:
        match = [r for r in rows if r["trial"] == trial]
        if not match:
            fail(f"trial {trial} is not a complete trial of {out}")
        row = match[0]
    else:
        feasible = [r for r in rows if r["fits_budget"]]
        if not feasible:
            fail(f"{out}: no complete trial fits the budgets")
        row = max(feasible, key=lambda r: r["si_snri"])
    config = {k.removeprefix("cfg."): v for k, v in row.items() if k.startswith("cfg.")}
    return {"base": results["base"], "trial": row["trial"], "config": config}


def register(app: typer.Typer) -> None:
    @app.command()
    def search(
        target: Annotated[
            Path,
            typer.Argument(help="Search space (YAML, configs/search/); with --train-best: OUT."),
        ],
        recipe: Annotated[
            Path | None, typer.Argument(help="With --train-best: the training recipe (YAML).")
        ] = None,
        out: Annotated[Path | None, typer.Option("-o", "--out", help="Output folder.")] = None,
        trials: Annotated[
            int, typer.Option(help="Trials in the study, all workers together.")
        ] = 20,
        storage: Annotated[
            str, typer.Option(help="Optuna RDB URL (default sqlite:///OUT/study.db).")
        ] = "",
        study: Annotated[str, typer.Option(help="Study name (default: the space's name).")] = "",
        device: Annotated[
            str, typer.Option(help="Device profile whose budgets are hard constraints.")
        ] = "",
        workers: Annotated[int, typer.Option(help="Worker processes sharing the study.")] = 1,
        train_best: Annotated[
            bool, typer.Option("--train-best", help="Train OUT's best feasible config on RECIPE.")
        ] = False,
        trial: Annotated[
            int | None, typer.Option(help="With --train-best: this trial instead of the best.")
        ] = None,
        overrides: Annotated[
            list[str] | None, typer.Option("--set", help="With --train-best: recipe key=value.")
        ] = None,
    ) -> None:
        """Search a model family for the best separation within device budgets (Optuna)."""
        _need_optuna()
        if train_best:
            if recipe is None:
                fail(
                    "--train-best needs OUT and RECIPE: edgesep search --train-best OUT RECIPE.yaml"
                )
            _train_best(target, recipe, trial, overrides or [])
            return
        if out is None:
            fail("give the output folder with -o OUT")
        from edgesep.search.driver import SearchOptions
        from edgesep.search.driver import search as run
        from edgesep.search.report import write_outputs
        from edgesep.search.space import load_space

        with user_errors():
            space = load_space(target)
            opts = SearchOptions(out, trials, storage, study, device, workers)
            result = run(target, opts, console)
            about = {
                "space": space.name,
                "space_file": str(target),
                "base": space.base,
                "family": space.family,
                "objectives": list(space.objectives),
                "device": device or None,
                "storage": opts.storage_url,
                "study": result.study_name,
            }
            results = write_outputs(result, out, about)
        t = results["trials"]
        mape = results["predictor"]["mape_leave_one_out"]
        console.print(
            f"{t['complete']} complete, {t['pruned_early']} stopped early, "
            f"{t['rejected_before_training']} rejected before training, {t['failed']} failed; "
            f"{len(results['pareto'])} on the Pareto front; latency predictor MAPE "
            + (f"{100 * mape:.1f} %" if mape is not None else "— (too few trials)")
        )
        console.print(f"results in {out}/ (pareto.csv, trials.csv, report.html)")

    def _train_best(out: Path, recipe: Path, trial: int | None, extra: list[str]) -> None:
        from edgesep.config import apply_overrides, from_dict, load_file
        from edgesep.train.loop import TrainConfig, train

        chosen = _chosen(out, trial)
        with user_errors():
            data = apply_overrides(load_file(recipe), extra)
            data["model"] = chosen["base"]
            data["model_overrides"] = {**data.get("model_overrides", {}), **chosen["config"]}
            if not any(o.startswith("out_dir=") for o in extra):
                data["out_dir"] = str(out / f"train-best-{chosen['trial']:04d}")
            cfg = from_dict(TrainConfig, data)
            console.print(
                f"training trial {chosen['trial']}: {chosen['base']} with {chosen['config']}"
            )
            best = train(cfg, console=console)
        if best.with_suffix(".safetensors").is_file():
            console.print(f"best model: {best}.safetensors (load it with edgesep separate -m)")
