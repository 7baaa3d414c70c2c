"""What a search leaves in OUT: every trial (trials.json/.csv), the Pareto set (pareto.json/.csv),
the latency predictor (predictor.json), Pareto plots (PNG) and one HTML page.

The Pareto set is the feasible trials (all budgets met) that no other feasible trial beats on
SI-SNRi, compute time and bytes at once. ``predicted_ms`` is each trial's leave-one-out prediction
(a fit that did not see it); the ``*_ms_projected`` columns scale the measured time by peak MAC
rates to reference devices: projections, not measurements.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

from edgesep.atomic import write_text
from edgesep.bench.report import html_table, pareto_front
from edgesep.search import predictor
from edgesep.search.cost import projected_compute_ms

PROJECT_TO = ("rpi5-cortex-a76", "rpi3-cortex-a53", "stm32h7-cortex-m7")


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One row per complete trial: its config and every measured figure."""
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cost = t.user_attrs["cost"]
        row: dict[str, Any] = {
            "trial": t.number,
            **{f"cfg.{k}": v for k, v in t.user_attrs["config"].items()},
        }
        row.update(
            si_snri=t.values[0],
            params=cost["params"],
            bytes=cost["bytes"],
            mmacs_per_second=cost["macs_per_second"] / 1e6,
            compute_ms=cost["compute_ms"],
            compute_p99_ms=cost["compute_p99_ms"],
            latency_ms=cost["latency_ms"],
            ram_mb=cost["ram_mb"],
            fits_budget=all(c <= 0 for c in t.constraints.values()),
        )
        rows.append(row)
    return rows


def _dominated(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """b is at least as good as a everywhere and better somewhere."""
    ge = (
        b["si_snri"] >= a["si_snri"]
        and b["compute_ms"] <= a["compute_ms"]
        and b["bytes"] <= a["bytes"]
    )
    gt = b["si_snri"] > a["si_snri"] or b["compute_ms"] < a["compute_ms"] or b["bytes"] < a["bytes"]
    return ge and gt


def mark_pareto(rows: list[dict[str, Any]]) -> None:
    feasible = [r for r in rows if r["fits_budget"]]
    for r in rows:
        r["pareto"] = r["fits_budget"] and not any(_dominated(r, o) for o in feasible)


def measured_points(study: Any) -> list[dict[str, Any]]:
    """The cost of every trial whose graph was timed, trained or not (the predictor's data)."""
    return [
        {"trial": t.number, **t.user_attrs["cost"]}
        for t in study.get_trials(deepcopy=False)
        if "compute_ms" in t.user_attrs.get("cost", {})
    ]


def add_predictions(rows: list[dict[str, Any]], points: list[dict[str, Any]]) -> dict[str, Any]:
    """Leave-one-out predicted compute per row, projections per device, the predictor's record."""
    loo = predictor.leave_one_out(points)
    held_out = {p["trial"]: pred for p, pred in zip(points, loo["predictions"], strict=True)}
    for r in rows:
        r["predicted_ms"] = held_out.get(r["trial"])
        for device, ms in projected_compute_ms(r["compute_ms"], PROJECT_TO).items():
            r[f"{device}_ms_projected"] = ms
    record: dict[str, Any] = {"n_trials": loo["n"], "mape_leave_one_out": loo["mape"]}
    if len(points) >= predictor.MIN_POINTS:
        record.update(predictor.fit(points).to_dict())
    return record


def _plots(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for key, label, stem in (
        ("compute_ms", "compute of one call, ONNX Runtime, 1 thread (ms, log)", "pareto_latency"),
        ("bytes", "ONNX graph bytes (MB, log)", "pareto_bytes"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        scale = 1e-6 if key == "bytes" else 1.0
        for fits, colour, name in (
            (True, "tab:blue", "fits the budgets"),
            (False, "tab:grey", "over budget"),
        ):
            pts = [(r[key] * scale, r["si_snri"]) for r in rows if r["fits_budget"] == fits]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.scatter(xs, ys, color=colour, label=name, zorder=3, s=18)
        front = pareto_front([(r[key] * scale, r["si_snri"]) for r in rows if r["fits_budget"]])
        if front:
            ax.step(
                *zip(*front, strict=True), where="post", color="k", lw=0.8, label="Pareto front"
            )
        ax.set_xscale("log")
        ax.set(xlabel=label, ylabel="proxy validation SI-SNRi (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{stem}.png"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    keys = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def summary(study: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    rejected = [t for t in trials if t.state == TrialState.PRUNED and "rejected" in t.user_attrs]
    return {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned_early": sum(t.state == TrialState.PRUNED for t in trials) - len(rejected),
        "rejected_before_training": len(rejected),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
    }


def write_outputs(study: Any, out: Path, about: dict[str, Any]) -> dict[str, Any]:
    """Write every output file; returns the results dict (also OUT/search.json)."""
    rows = trial_rows(study)
    mark_pareto(rows)
    record = add_predictions(rows, measured_points(study))
    rows.sort(key=lambda r: -r["si_snri"])
    pareto = [r for r in rows if r["pareto"]]
    results = {**about, "trials": summary(study), "predictor": record, "pareto": pareto}
    write_text(out / "trials.json", json.dumps(rows, indent=2) + "\n")
    write_text(out / "trials.csv", _csv(rows))
    write_text(out / "pareto.json", json.dumps(pareto, indent=2) + "\n")
    write_text(out / "pareto.csv", _csv(pareto))
    write_text(out / "predictor.json", json.dumps(record, indent=2) + "\n")
    write_text(out / "search.json", json.dumps(results, indent=2) + "\n")
    images = _plots(rows, out) if rows else []
    encoded = {p.stem: base64.b64encode(p.read_bytes()).decode() for p in images}
    imgs = "".join(f'<img alt="{k}" src="data:image/png;base64,{v}">' for k, v in encoded.items())
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}"
    )
    facts = {**{k: v for k, v in about.items() if not isinstance(v, dict)}, **results["trials"]}
    mape = record["mape_leave_one_out"]
    facts["predictor MAPE (leave-one-out)"] = f"{100 * mape:.1f} %" if mape is not None else "—"
    items = "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in facts.items()
    )
    write_text(
        out / "report.html",
        f"<!doctype html><html><head><meta charset='utf-8'><title>edgesep search "
        f"{html.escape(str(about.get('space', '')))}</title><style>{style}</style></head><body>"
        f"<h1>edgesep search: {html.escape(str(about.get('space', '')))}</h1><ul>{items}</ul>"
        f"<h2>Pareto set</h2>{html_table(pareto)}<h2>Pareto plots</h2>{imgs}"
        f"<h2>All complete trials</h2>{html_table(rows)}</body></html>\n",
    )
    return results
