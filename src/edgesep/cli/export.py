"""``edgesep export MODEL -o model.onnx``: an ONNX graph checked against the eager model.

The file appears only once ONNX Runtime has reproduced the eager model on fresh input (rtol 1e-4,
atol 1e-5, at lengths other than the traced one); a failed check exits 1 and leaves nothing.
``--stream`` exports a causal model's step graph (explicit state inputs and outputs) instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgesep.cli.common import console, fail, user_errors
from edgesep.models.base import Separator
from edgesep.zoo import DEFAULT_MODEL


def export(
    out: Annotated[Path, typer.Option("-o", "--out", help="The .onnx file to write.")],
    model: Annotated[
        str, typer.Argument(help="Bundled model, artifact path, or registered config name.")
    ] = DEFAULT_MODEL,
    stream: Annotated[
        bool, typer.Option("--stream", help="Export the causal streaming step graph.")
    ] = False,
    hops_per_step: Annotated[
        int, typer.Option(help="Hops per call of the step graph (with --stream).")
    ] = 1,
    dynamic_hops: Annotated[
        bool,
        typer.Option("--dynamic-hops", help="Step graph taking any whole number of hops per call."),
    ] = False,
    untrained: Annotated[
        bool, typer.Option("--untrained", help="Allow a config name (random weights).")
    ] = False,
    check: Annotated[bool, typer.Option(help="Check ONNX Runtime against eager.")] = True,
    fit: Annotated[
        str,
        typer.Option(
            "--fit", help="Elastic MODEL: export its largest subnet that fits this device profile."
        ),
    ] = "",
) -> None:
    """Export MODEL to ONNX (fp32; int8 QDQ for a quantized artifact), checked before it is kept."""
    from edgesep.compress.quant.ptq import QUANT_PASSES
    from edgesep.export import (
        check_parity,
        check_step_parity,
        export_onnx,
        export_step_onnx,
    )
    from edgesep.export.onnx import ParityError
    from edgesep.export.qdq import check_qdq_parity, export_qdq
    from edgesep.models.artifact import model_records
    from edgesep.zoo import load

    if out.suffix != ".onnx":
        fail(f"{out}: the output file must end in .onnx")
    from edgesep.models.zoo_registry import list_configs
    from edgesep.zoo import resolve

    configs = {name for name, _ in list_configs()}
    if model in configs and resolve(model) is None and not untrained:
        fail(f"{model}: a config without trained weights; pass --untrained to export it anyway")
    with user_errors():
        sep = load(model, allow_untrained=untrained)
        if fit:
            sep = _fit(sep, model, fit)
        quantized = any(r.get("pass") in QUANT_PASSES for r in model_records(sep))
        if quantized and stream:
            fail(f"{model}: quantized step graphs are not exported yet; export it offline")
        worst = snr_db = None
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.with_name(f".{out.name}.unchecked")
        try:
            if stream:
                export_step_onnx(sep, staging, hops_per_step=hops_per_step, dynamic=dynamic_hops)
                worst = check_step_parity(sep, staging) if check else None
            elif quantized:
                # fake-quant models become QDQ graphs that ORT runs on integer kernels
                export_qdq(sep, staging)
                snr_db = check_qdq_parity(sep, staging) if check else None
            else:
                export_onnx(sep, staging)
                rate = sep.sample_rate
                worst = check_parity(sep, staging, [rate // 2 + 3, 2 * rate + 1]) if check else None
            os.replace(staging, out)
        except ParityError as exc:
            fail(f"parity check failed, nothing written: {exc}")
        finally:
            staging.unlink(missing_ok=True)
    kind = "streaming step graph" if stream else "int8 QDQ graph" if quantized else "graph"
    parity = "unchecked" if worst is None else f"ONNX Runtime vs eager max |diff| {worst:.2e}"
    if snr_db is not None:
        parity = f"ONNX Runtime int8 vs eager fake-quant SNR {snr_db:.1f} dB"
    size = out.stat().st_size / 1e6
    console.print(f"wrote {out} ({kind}, {size:.2f} MB); {parity}")


def _fit(sep: Separator, model: str, device: str) -> Separator:
    from edgesep.models.elastic import ElasticConvTasNet
    from edgesep.search.fit import describe_choice, fit_subnet

    if not isinstance(sep, ElasticConvTasNet):
        fail(f"{model}: --fit needs an elastic supernet (e.g. convtasnet-elastic-tiny)")
    with console.status(f"measuring subnets of {model} against {device}'s budgets"):
        result = fit_subnet(sep, device)
    v = result["verdict"]
    console.print(
        f"subnet {describe_choice(result['choice'])} fits {device} ({v['kind']}): "
        + ", ".join(f"{k} {v['values'][k]:.3g}" for k in v["checks"])
        + f"; {len(result['tried'])} subnet(s) measured"
    )
    return sep.subnet(result["choice"]).eval()


def register(app: typer.Typer) -> None:
    app.command("export")(export)
