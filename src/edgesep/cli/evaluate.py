"""``edgesep evaluate``: score a model against the mixture and oracle-IRM references."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgesep.cli.common import console, user_errors
from edgesep.cli.separate import ThreadsOption, set_threads

_METRIC_TITLES = {"si_snr": "SI-SNR", "si_snri": "SI-SNRi", "sdr": "SDR", "sdri": "SDRi"}


def summary_table(summary: dict[str, Any]) -> Table:
    """Mean (median) of each metric per system, in dB."""
    model = summary["model"]["name"]
    table = Table(
        title=f"{model} on {summary['data']['dir']} ({summary['n_files']} files)",
        caption="dB, mean (median); per file averaged over sources after the best permutation",
    )
    table.add_column("system", style="bold", no_wrap=True)
    for title in _METRIC_TITLES.values():
        table.add_column(title, justify="right")
    for system, metrics in summary["systems"].items():
        label = f"model: {model}" if system == "model" else system
        cells = [f"{metrics[m]['mean']:.2f} ({metrics[m]['median']:.2f})" for m in _METRIC_TITLES]
        table.add_row(label, *cells)
    return table


def music_table(summary: dict[str, Any]) -> Table:
    """Per-stem cSDR and uSDR of each system, in dB."""
    model = summary["model"]["name"]
    systems = summary["systems"]
    stems = [s for s in next(iter(systems.values()))["usdr"] if s != "mean"]
    table = Table(
        title=f"{model} on {summary['data']['dir']} ({summary['split']}, "
        f"{summary['n_tracks']} tracks)",
        caption="dB; cSDR: median over tracks of BSS Eval v4 frame medians; uSDR: mean",
    )
    table.add_column("system", style="bold", no_wrap=True)
    kinds = [k for k in ("csdr", "usdr") if k in next(iter(systems.values()))]
    for kind in kinds:
        for stem in [*stems, "mean"]:
            table.add_column(f"{kind[0]}SDR {stem}", justify="right")
    for system, scores in systems.items():
        label = f"model: {model}" if system == "model" else system
        cells = [f"{scores[k][s]:.2f}" for k in kinds for s in [*stems, "mean"]]
        table.add_row(label, *cells)
    return table


def evaluate(
    model: Annotated[str, typer.Argument(help="Bundled model name or artifact path.")],
    data_dir: Annotated[
        Path, typer.Argument(help="Mixture folder (mix/ s1/ s2/) or a dataset root.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "-o", "--out", help="Folder for summary.json + per_file.csv [out/eval/<model>]."
        ),
    ] = None,
    max_items: Annotated[
        int | None, typer.Option(help="Evaluate only the first N mixtures.")
    ] = None,
    threads: ThreadsOption = None,
    split: Annotated[str, typer.Option(help="Music (MUSDB18 layout): train, valid or test.")] = (
        "test"
    ),
    bss: Annotated[
        bool, typer.Option(help="Music: BSS Eval v4 cSDR (seconds per song) besides uSDR.")
    ] = True,
    mixture: Annotated[
        str, typer.Option(help="Speech: clean (mix/, mix_clean/) or both (WHAM! mix_both/).")
    ] = "clean",
    references: Annotated[
        bool, typer.Option(help="Also score the mixture and oracle-mask reference rows.")
    ] = True,
) -> None:
    """Evaluate MODEL on DATA_DIR: SI-SNR(i) and SDR(i) for mixture, oracle IRM and the model.

    A MUSDB18-layout DATA_DIR (songs with mixture.wav + stems, or .stem.mp4) is scored per stem
    with cSDR (BSS Eval v4) and uSDR instead.
    """
    from edgesep.data.datasets.musdb import is_musdb_root
    from edgesep.evaluate import evaluate as run_evaluation
    from edgesep.models.artifact import artifact_paths

    set_threads(threads)
    out_dir = out if out is not None else Path("out") / "eval" / artifact_paths(model)[0].stem
    if is_musdb_root(data_dir):
        from edgesep.evaluate_music import evaluate_music

        with user_errors():
            music = evaluate_music(
                model,
                data_dir,
                split=split,
                out_dir=out_dir,
                max_items=max_items,
                bss=bss,
                references=references,
            )
        console.print(music_table(music.summary))
        console.print(f"wrote {music.json_path} and {music.csv_path}")
        return
    with user_errors():
        report = run_evaluation(
            model,
            data_dir,
            out_dir=out_dir,
            max_items=max_items,
            mixture=mixture,
            references=references,
        )
    console.print(summary_table(report.summary))
    console.print(f"wrote {report.json_path} and {report.csv_path}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
