"""``edgesep analyze-quant``: predicted vs measured SI-SNR per bit width and tensor group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgesep.cli.common import console, user_errors
from edgesep.cli.separate import ThreadsOption, set_threads


def analyze_quant(
    model: Annotated[str, typer.Argument(help="Bundled model name or artifact path.")],
    data_dir: Annotated[
        Path, typer.Option("--data", help="Mixture folder (mix/ s1/ s2/) to score on.")
    ] = Path("data/mix8k/synth-test"),
    calib_dir: Annotated[
        Path | None,
        typer.Option("--calib", help="Mixture folder for calibration [the --data mixtures]."),
    ] = None,
    max_items: Annotated[int, typer.Option(help="Mixtures to score (and calibrate on).")] = 20,
    bits: Annotated[str, typer.Option(help="Bit widths, comma-separated.")] = "4,6,8,10,12",
    groups: Annotated[
        str, typer.Option(help="Tensor groups: input,output,activations,weights.")
    ] = "input,output,activations,weights",
    out: Annotated[
        Path, typer.Option("-o", "--out", help="PNG plot; the JSON goes beside it.")
    ] = Path("out/analyze-quant.png"),
    threads: ThreadsOption = None,
) -> None:
    """Quantize one tensor group of MODEL at a time and compare measured SI-SNR with the
    prediction (closed-form SQNR for input/output, combination rule for the others)."""
    import torch

    from edgesep import load_model
    from edgesep.atomic import write_text
    from edgesep.compress.quant.analysis import analyze, plot
    from edgesep.data.datasets import MixtureDataset

    set_threads(threads)
    with user_errors():
        net = load_model(model)
        ds = MixtureDataset(str(data_dir), max_items=max_items)
        items = [
            (torch.from_numpy(ds[i]["mix"]), torch.from_numpy(ds[i]["sources"]))
            for i in range(len(ds))
        ]
        cal = MixtureDataset(str(calib_dir), max_items=max_items) if calib_dir else ds
        cal_mixes = [torch.from_numpy(cal[i]["mix"])[None, None] for i in range(len(cal))]

        def calibration() -> Iterator[torch.Tensor]:
            return iter(cal_mixes)

        result = analyze(
            net,
            items,
            calibration,
            bits=[int(b) for b in bits.split(",")],
            groups=[g.strip() for g in groups.split(",")],
        )
        plot(result, out, title=f"{model}: one tensor group quantized")
        write_text(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    table = Table(
        title=f"{model} on {data_dir} ({result['n_items']} mixtures), float SI-SNR "
        f"{result['float']:.2f} dB",
        caption="dB; predicted: closed-form SQNR (input, output) or combination rule",
    )
    for col in ("group", "bits", "measured", "predicted", "output SNR"):
        table.add_column(col, justify="right")
    for r in result["rows"]:
        table.add_row(
            r["group"],
            str(r["bits"]),
            f"{r['measured']:.2f}",
            f"{r['predicted']:.2f}",
            f"{r['output_snr']:.1f}",
        )
    console.print(table)
    console.print(f"wrote {out} and {out.with_suffix('.json')}")


def register(app: typer.Typer) -> None:
    app.command("analyze-quant")(analyze_quant)
