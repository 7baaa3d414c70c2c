"""Benchmark reports: leaderboard (Markdown, CSV, JSON), Pareto plots, one HTML page, the docs page.

All are written from the results dict of :func:`edgesep.bench.harness.run_bench`, so a report
can be re-rendered from ``results.json`` without measuring again (:func:`write_reports`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import shutil
from pathlib import Path
from typing import Any

from edgesep.atomic import write_text

REFERENCE_LABELS = {
    "mixture": "unprocessed mixture",
    "oracle-irm": "oracle IRM",
    "oracle-ibm": "oracle IBM",
}
BUDGET_KEYS = ("latency_ms", "model_mb", "ram_mb", "rtf")
BUDGET_LABELS = {
    "latency_ms": "latency budget (ms)",
    "model_mb": "size budget (MB)",
    "ram_mb": "RAM budget (MB)",
    "rtf": "RTF budget",
}
PARETO = {  # cost axis -> (file stem, label, value from a row)
    "latency": (
        "pareto_latency",
        "real-time factor (1 thread, log)",
        lambda r: r["latency"]["rtf"]["median"],
    ),
    "bytes": ("pareto_bytes", "bytes on disk (MB, log)", lambda r: r["bytes"] / 1e6),
    "macs": ("pareto_macs", "MMAC per second of audio (log)", lambda r: r["macs_per_second"] / 1e6),
}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _tests(results: dict[str, Any]) -> list[str]:
    return list(results["references"])


def leaderboard_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows: one per target, then the reference rows of the test sets."""
    out = []
    host = results["manifest"]["config"]["profile"]["devices"][0]
    for row in results["rows"]:
        lat, comp = row["latency"], row["latency"]["compute"] or {}
        flat: dict[str, Any] = {
            "system": row["name"].rsplit("/", 1)[0],
            "variant": row["variant"],
            "trained": row["trained"],
        }
        for test in _tests(results):
            q = row["quality"].get(test, {})
            flat[f"{test} SI-SNRi"], flat[f"{test} SDRi"] = q.get("si_snri"), q.get("sdri")
        budgets = row["devices"].get(host, {}).get("budgets", {})
        flat.update(
            {
                "params": row["params"],
                "MB": row["bytes"] / 1e6,
                "dtype": row["dtype"],
                "MMAC/s": row["macs_per_second"] / 1e6,
                "RAM MB": (row["memory"] or {}).get("model_rss_mb"),
                "call ms": lat["call_ms"],
                "compute p50 ms": comp.get("p50_ms"),
                "compute p99 ms": comp.get("p99_ms"),
                "RTF": lat["rtf"]["median"],
                "stream RTF (p99)": lat.get("stream_rtf"),
                "algorithmic ms": lat["algorithmic_ms"],
                "total ms": lat["total_ms"],
                "budgets passed": _passed(budgets),
            }
        )
        out.append(flat)
    for system, label in REFERENCE_LABELS.items():
        flat = {"system": label, "variant": "reference", "trained": None}
        for test in _tests(results):
            q = results["references"][test]["systems"].get(system, {})
            flat[f"{test} SI-SNRi"], flat[f"{test} SDRi"] = q.get("si_snri"), q.get("sdri")
        out.append(flat)
    return out


def _passed(budgets: dict[str, Any]) -> str:
    known = [b for b in budgets.values() if b.get("pass") is not None]
    return f"{sum(bool(b['pass']) for b in known)}/{len(known)}" if known else "—"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def device_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in results["rows"]:
        for name, dev in row["devices"].items():
            flat: dict[str, Any] = {
                "system": row["name"],
                "device": name,
                "figures": dev["kind"],
                "latency ms": dev["latency_ms"],
                "RTF": dev["rtf"],
            }
            for key in BUDGET_KEYS:
                verdict = dev["budgets"].get(key, {})
                mark = {True: "pass", False: "FAIL", None: "—"}[verdict.get("pass")]
                limit = verdict.get("limit")
                flat[BUDGET_LABELS[key]] = mark if limit is None else f"{mark} (limit {limit:g})"
            flat["energy mJ/s (estimate)"] = dev.get("energy", row["energy"])["mj_per_audio_second"]
            out.append(flat)
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both cost (lower) and quality (higher), by cost."""
    front, best = [], float("-inf")
    for cost, quality in sorted(points, key=lambda p: (p[0], -p[1])):
        if quality > best:
            front.append((cost, quality))
            best = quality
    return front


def pareto_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """One PNG per cost axis, one panel per test set: SI-SNRi against cost, front marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    tests = _tests(results)
    for stem, label, cost_of in PARETO.values():
        fig, axes = plt.subplots(1, len(tests), figsize=(5.5 * len(tests), 4.2), squeeze=False)
        for ax, test in zip(axes[0], tests, strict=True):
            points = []
            for row in results["rows"]:
                if test in row["quality"]:
                    x, y = cost_of(row), row["quality"][test]["si_snri"]
                    points.append((x, y))
                    ax.scatter([x], [y], zorder=3)
                    ax.annotate(
                        row["name"], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points"
                    )
            front = pareto_front(points)
            if front:
                ax.step(
                    *zip(*front, strict=True), where="post", color="k", lw=0.8, label="Pareto front"
                )
            for system, style in (("oracle-irm", "--"), ("oracle-ibm", ":"), ("mixture", "-")):
                ref = results["references"][test]["systems"].get(system)
                if ref:
                    ax.axhline(
                        ref["si_snri"], ls=style, color="grey", label=REFERENCE_LABELS[system]
                    )
            ax.set_xscale("log")
            ax.set(xlabel=label, ylabel="SI-SNRi (dB)", title=test)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="center right")
        fig.tight_layout()
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _about(results: dict[str, Any]) -> list[str]:
    m = results["manifest"]
    git = m["git"]
    dirty = " (with uncommitted changes)" if git.get("dirty") else ""
    return [
        f"- Config `{results['name']}`; command `{' '.join(m['command'])}`; "
        f"created {m['created']}.",
        f"- Commit `{git.get('commit')}`{dirty}; {m['host']['cpu']}; {m['threads']} thread(s); "
        f"seed {m['seed']}; torch {m['packages'].get('torch')}, onnxruntime "
        f"{m['packages'].get('onnxruntime')}.",
        "- Quality: mean over the test set's files (best permutation). Latency: *compute* is one "
        "call (a 1-chunk forward, or one streaming step for causal models), p50/p99 over "
        "repeated runs after warm-up; *algorithmic* is what the model waits for (a non-causal "
        "model: its whole 8 s chunk); *total* = algorithmic + compute p99. RTF = wall time of a "
        "whole file / its duration; *stream RTF* (causal models) = one step's compute p99 / the "
        "step's duration, which the RTF budget checks for them. RAM: peak RSS of a child "
        "process minus that of the same imports without the model.",
        "- Device rows marked *projected* scale this machine's measured times by the ratio of "
        "peak MAC rates; *projected (computed)* rows (microcontrollers) are computed from the "
        "model: weights in flash, live activations in SRAM, MACs over the peak rate. Energy is "
        "an *estimate* (MACs x pJ/MAC + bytes x pJ/byte): one figure from 45 nm per-operation "
        "energies for every profile without its own, so equal rows are one estimate, not "
        "several measurements.",
    ]


def markdown_report(results: dict[str, Any], image_dir: str = ".") -> str:
    lines = [
        f"# Benchmark: {results['name']}",
        "",
        *_about(results),
        "",
        "## Leaderboard",
        "",
        markdown_table(leaderboard_rows(results)),
        "## Devices and budgets",
        "",
        markdown_table(device_rows(results)),
        "## Pareto plots",
        "",
    ]
    for stem, label, _ in PARETO.values():
        lines.append(f"![SI-SNRi vs {label}]({image_dir}/{stem}.png)")
    lines += [
        "",
        "Reproduce: `edgesep bench --reproduce manifest.json` (the manifest of this "
        "run lists the commit, config, data hashes and package versions).",
        "",
    ]
    return "\n".join(lines)


def html_table(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k)))}</td>" for k in keys) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(results: dict[str, Any], images: list[Path]) -> str:
    imgs = "".join(
        f'<img alt="{p.stem}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">'
        for p in images
    )
    about = "".join(f"<li>{html.escape(line[2:])}</li>" for line in _about(results))
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "img{max-width:100%;margin:1em 0}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>edgesep bench "
        f"{html.escape(results['name'])}</title><style>{style}</style></head><body>"
        f"<h1>edgesep benchmark: {html.escape(results['name'])}</h1><ul>{about}</ul>"
        f"<h2>Leaderboard</h2>{html_table(leaderboard_rows(results))}"
        f"<h2>Devices and budgets</h2>{html_table(device_rows(results))}"
        f"<h2>Pareto plots</h2>{imgs}</body></html>\n"
    )


def write_reports(results: dict[str, Any], out_dir: Path) -> None:
    """results.json, manifest.json, leaderboard.{md,csv,json}, PNGs, report.html, BENCHMARKS.md."""
    write_text(out_dir / "results.json", json.dumps(results, indent=1) + "\n")
    write_text(out_dir / "manifest.json", json.dumps(results["manifest"], indent=1) + "\n")
    rows = leaderboard_rows(results)
    write_text(out_dir / "leaderboard.json", json.dumps(rows, indent=1) + "\n")
    write_text(out_dir / "leaderboard.md", markdown_table(rows))
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "leaderboard.csv", buf.getvalue())
    images = pareto_plots(results, out_dir)
    write_text(out_dir / "report.html", html_report(results, images))
    write_text(out_dir / "BENCHMARKS.md", markdown_report(results))


def publish(out_dir: Path, docs_md: Path) -> Path:
    """Copy a run's Markdown report to ``docs_md`` and its plots to ``<docs_md stem>/`` beside it
    (docs/BENCHMARKS.md -> docs/bench/), with the image links pointing there."""
    results = json.loads((out_dir / "results.json").read_text())
    image_dir = docs_md.parent / "bench"
    image_dir.mkdir(parents=True, exist_ok=True)
    for stem, _, _ in PARETO.values():
        shutil.copyfile(out_dir / f"{stem}.png", image_dir / f"{stem}.png")
    shutil.copyfile(out_dir / "manifest.json", image_dir / "manifest.json")
    header = (
        "<!-- generated by `make bench` (edgesep bench configs/bench/bundled.yaml --docs "
        "docs/BENCHMARKS.md); do not edit by hand -->\n\n"
    )
    text = markdown_report(results, image_dir="bench").replace(
        "manifest of this run", "manifest of this run, [bench/manifest.json](bench/manifest.json)"
    )
    return write_text(docs_md, header + text)
