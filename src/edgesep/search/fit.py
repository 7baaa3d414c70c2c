"""The largest subnet of an elastic supernet that fits a device (``edgesep export --fit``).

Subnets are tried from the most MACs down. Each is measured on this machine as the search
measures a trial (:mod:`edgesep.search.cost`: its ONNX graph's bytes and one ONNX Runtime call
on one thread), and its compute time is projected to the device by peak MAC rates where the
device is not this machine. The first that meets the device's budgets wins:

- model size (``model_mb``) and, when measured, RAM (``ram_mb``);
- the real-time factor of one call (``rtf``), measured or projected;
- total latency (``latency_ms``) for causal subnets only. A non-causal subnet answers a whole
  chunk at once, so its latency is the chunk length whatever the device.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from edgesep.bench.devices import HOST_NAME, host_profile, load_device, project_seconds
from edgesep.errors import InputError
from edgesep.models.elastic import Choice, ElasticConvTasNet
from edgesep.search.cost import Cost, budget_values, measured_cost, static_cost


def _fits(figures: dict[str, Any], device: str, causal: bool) -> tuple[bool, dict[str, Any]]:
    host = host_profile()
    target = host if device == HOST_NAME else load_device(device)
    scale = project_seconds(1.0, host, target, "fp32", 1)
    values = budget_values(figures)
    rtf = float(figures["rtf"]) * scale
    latency = float(figures["algorithmic_ms"]) + float(figures["compute_p99_ms"]) * scale
    values.update(rtf=rtf, latency_ms=latency)
    b = target.budgets
    model_mb, ram_mb = float(values["model_mb"] or 0.0), values["ram_mb"]
    checks = {
        "model_mb": model_mb <= b.model_mb,
        "rtf": rtf < b.rtf,
        **({"ram_mb": ram_mb <= b.ram_mb} if ram_mb is not None else {}),
        **({"latency_ms": latency <= b.latency_ms} if causal else {}),
    }
    kind = "measured" if device == HOST_NAME else "projected"
    return all(checks.values()), {"values": values, "checks": checks, "kind": kind}


def fit_subnet(
    supernet: ElasticConvTasNet, device: str, cost: Cost | None = None, work: Path | None = None
) -> dict[str, Any]:
    """``{"choice", "figures", "verdict", "tried"}`` of the largest fitting subnet; ValueError
    when none fits."""
    cost = cost or Cost()
    load_device(device)  # a bad name fails before any measuring
    subnets = [(choice, supernet.subnet(choice).eval()) for choice in supernet.all_choices()]
    statics = [static_cost(model, cost) for _, model in subnets]
    order = sorted(range(len(subnets)), key=lambda i: -statics[i]["macs_per_second"])
    tried: list[dict[str, Any]] = []
    limit_mb = load_device(device).budgets.model_mb if device != HOST_NAME else None
    with tempfile.TemporaryDirectory() as tmp:
        base = work or Path(tmp)
        for i in order:
            choice, model = subnets[i]
            if limit_mb is not None and 4 * model.n_params() / 1e6 > limit_mb:
                # fp32 weights alone break the size budget: no need to export and time it
                tried.append({"choice": choice, "fits": False, "why": "fp32 weights > model_mb"})
                continue
            figures = {**statics[i], **measured_cost(model, cost, base / f"{i:03d}")}
            ok, verdict = _fits(figures, device, model.causal)
            tried.append({"choice": choice, "fits": ok, **verdict})
            if ok:
                return {"choice": choice, "figures": figures, "verdict": verdict, "tried": tried}
    raise InputError(f"no subnet of the supernet fits {device}'s budgets ({len(tried)} tried)")


def describe_choice(choice: Choice) -> str:
    return ", ".join(f"{k}={v}" for k, v in choice.items())
