"""Write the tables of docs/COMPRESSION.md, docs/QUANTIZATION.md and docs/TRAINING.md from the
committed result files, between ``<!-- TAG: begin -->`` and ``<!-- TAG: end -->`` markers.

Usage: python benchmarks/docs_tables.py [--check]
--check writes nothing and exits 1 when a doc differs from its results (tests/test_docs_tables.py).

Each result file records the weights it was measured on (``model_weights_sha256``); the line
above each table says whether those are still the bundled weights, so a re-bundled model never
inherits figures measured on its predecessor.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS, RESULTS, ZOO = ROOT / "docs", ROOT / "benchmarks" / "results", ROOT / "src/edgesep/zoo"


def splice(text: str, tag: str, body: str) -> str:
    """``text`` with the block between the ``tag`` markers replaced by ``body``."""
    begin, end = f"<!-- {tag}: begin -->", f"<!-- {tag}: end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"markers {begin} ... {end} missing")
    pattern = re.escape(begin) + ".*?" + re.escape(end)
    return re.sub(pattern, lambda _: f"{begin}\n{body}\n{end}", text, flags=re.S)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def measured_on(result: dict[str, Any], name: str = "convtasnet-tiny-8k") -> str:
    """Which weights a result belongs to, against the bundled model of that name today."""
    sha = result.get("model_weights_sha256", "")
    current = _load(ZOO / f"{name}.json")["weights_sha256"]
    if sha == current:
        return f"Measured on the bundled `{name}` (weights `{sha[:8]}`)."
    return (
        f"**Measured on an earlier `{name}`** (weights `{sha[:8]}`), not on the bundled one "
        f"(`{current[:8]}`): the commands below re-measure them."
    )


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], rows: list[list[str]], align: str = "---") -> str:
    return "\n".join([_row(head), "|" + "|".join([align] * len(head)) + "|", *map(_row, rows)])


# --- COMPRESSION.md -----------------------------------------------------------------------

COMPRESS_TARGETS = DOCS / "compression" / "tiny-prune-distill-cluster.json"
TANWANG = DOCS / "compression" / "tanwang-sparse-prune-cluster.report.json"
COMPRESS_ROWS = {  # result key -> row label, in the doc's order
    "input": "input (fp32)",
    "pass 01-prune-structured": "50 % TCN channels pruned + 2 x 150 steps fine-tune",
    "pass 02-distill": "... + 200 steps distillation (alpha 0.5)",
    "pruned + 200 steps task loss only": (
        "... + 200 steps task loss only (same student, data, seed)"
    ),
    "final": "**pipeline: prune + distill + 4-bit cluster**",
    "cluster 4-bit only (biases fp32)": "4-bit cluster only, biases/norms fp32",
    "cluster 4-bit only (biases 8-bit shared)": (
        "4-bit cluster only, biases/norms on one 8-bit codebook"
    ),
}


def compress_targets() -> str:
    result = _load(COMPRESS_TARGETS)
    models, base = result["models"], result["models"]["input"]
    sets = [Path(d).name for d in result["test_dirs"]]
    rows = []
    for key, label in COMPRESS_ROWS.items():
        r = models[key]
        cells = [
            f"{r['bytes']:,}",
            f"{base['bytes'] / r['bytes']:.2f}",
            f"{r['n_params']:,}",
            f"{r['macs_per_second'] / 1e6:.1f} M",
            f"{base['latency_1s_p50_ms'] / r['latency_1s_p50_ms']:.2f}",
            f"{r['si_snri']:.2f}",
            f"{r['si_snri'] - base['si_snri']:+.2f}",
        ]
        if label.startswith("**"):
            cells = [f"**{c}**" if i in (0, 1, 5, 6) else c for i, c in enumerate(cells)]
        rows.append([label, *cells, *(f"{r[s]['si_snri']:.2f}" for s in sets)])
    head = ["model", "bytes", "x smaller", "params", "MACs/s", "latency x", "SI-SNRi"]
    return measured_on(result) + "\n\n" + _table([*head, "dB vs input", *sets], rows)


def compress_tanwang() -> str:
    result = _load(TANWANG)
    b, a, c = result["before"], result["after"], result["compare"]
    synth_real = "SI-SNRi (synth / real)"

    def sr(r: dict[str, Any]) -> str:
        synth, real = r["synth-test"]["si_snri"], r["real-test"]["si_snri"]
        return f"{r['si_snri']:.2f} ({synth:.2f} / {real:.2f})"

    rows = [
        ["bytes", f"{b['bytes']:,}", f"{a['bytes']:,}", f"**{c['bytes_ratio']:.2f}x smaller**"],
        ["params", f"{b['n_params']:,}", f"{a['n_params']:,}", f"{c['params_ratio']:.2f}x fewer"],
        [
            "MACs per second of audio",
            f"{b['macs_per_second'] / 1e6:.1f} M",
            f"{a['macs_per_second'] / 1e6:.1f} M",
            f"{c['macs_ratio']:.2f}x fewer",
        ],
        [
            "latency, 1 s chunk, 1 thread",
            f"{b['latency_1s_p50_ms']:.1f} ms",
            f"{a['latency_1s_p50_ms']:.1f} ms",
            f"{c['latency_ratio']:.2f}x faster",
        ],
        [synth_real, sr(b), sr(a), f"**{c['si_snri_delta_db']:+.2f} dB**"],
        ["SDRi", f"{b['sdri']:.2f}", f"{a['sdri']:.2f}", f"{c['sdri_delta_db']:+.2f} dB"],
    ]
    return measured_on(result) + "\n\n" + _table(["", "input", "after", "ratio / change"], rows)


# --- QUANTIZATION.md ----------------------------------------------------------------------

QUANT_TABLE = RESULTS / "quant-table.json"
QUANT_EDGE = RESULTS / "quant-edge-ort.json"


def _quant_label(key: str, spec: dict[str, Any]) -> str:
    if not spec:
        return "float"
    w4 = "" if spec.get("weight_bits", 8) == 8 else f" W{spec['weight_bits']}A{spec['act_bits']}"
    if spec["pass"] == "quantize-ptq":
        return f"PTQ{w4} (min-max)"
    steps = f"{spec['steps']} steps"
    if spec["pass"] == "qat":
        return f"QAT{w4} ({steps})"
    return f"FQSS{w4} ({steps}, residual output stage)" if not w4 else f"FQSS{w4} ({steps})"


def _quant_rows(keys: list[str]) -> str:
    result = _load(QUANT_TABLE)
    rows_in, base = result["rows"], result["rows"]["float"]["test_si_snri"]
    rows = []
    for key in keys:
        r = rows_in[key]
        s = r["test_si_snri"]
        label = _quant_label(key, r["spec"])
        delta = "-" if key == "float" else f"{s['mean'] - base['mean']:+.2f}"
        wall = "-" if key == "float" else f"{r['minutes']:.1f} min"
        rows.append(
            [
                label,
                f"{s['synth-test']:.2f}",
                f"{s['real-test']:.2f}",
                f"{s['mean']:.2f}",
                delta,
                wall,
            ]
        )
    head = ["row", "SI-SNRi synth-test", "SI-SNRi real-test", "mean", "vs float", "wall time"]
    return measured_on(result) + "\n\n" + _table(head, rows, "---:").replace("|---:|", "|---|", 1)


def quant_w8a8() -> str:
    return _quant_rows(["float", "ptq", "qat", "fqss"])


def quant_w4a8() -> str:
    return _quant_rows(["float", "ptq-w4", "fqss-w4"])


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in ops.items()) or "none"


def quant_edge() -> str:
    result = _load(QUANT_EDGE)
    rows, census = [], []
    for name, r in result["rows"].items():
        lat, s = r["latency"], r["test_si_snri"]
        ratio = r["size_ratio_vs_fp32"]
        rows.append(
            [
                name,
                f"{r['bytes'] / 1e6:.2f} MB",
                "1.00x" if ratio == 1.0 else f"{ratio:.2f}x smaller",
                f"{lat['median_ms']:.1f}",
                f"{lat['p99_ms']:.1f}",
                f"{lat['min_ms']:.1f}",
                f"{r['speedup_vs_fp32']:.2f}",
                f"{s['synth-test']:.2f} / {s['real-test']:.2f}",
            ]
        )
        if "census" in r:
            c = r["census"]
            share = f"{100 * c['int8_mac_share']:.0f} % ({c['macs_int8'] / 1e6:.1f} M of "
            share += f"{(c['macs_int8'] + c['macs_float']) / 1e6:.1f} M per second of audio)"
            census.append([name, _ops(c["int8_ops"]), _ops(c["float_ops"]), share])
    n = result["test_max"]
    head = [
        "graph",
        "file",
        "vs fp32",
        "median ms",
        "p99 ms",
        "min ms",
        "speed-up (median)",
        f"SI-SNRi synth / real ({n} + {n}, in ORT)",
    ]
    ops_head = ["graph", "int8 ops", "float arithmetic left", "MACs in int8"]
    source = f"Model: `{result['model']}`, {result['host']}, {result['repeats']} runs per graph."
    return "\n\n".join(
        [
            source,
            _table(head, rows),
            "Ops in the graph ORT optimises and runs (`int8_report`):",
            _table(ops_head, census),
        ]
    )


# --- TRAINING.md --------------------------------------------------------------------------

TRAIN_STATE = ROOT / "checkpoints" / "convtasnet-tiny-8k" / "last" / "state.json"
TRAIN_CURVE_PNG = DOCS / "training" / "convtasnet-tiny-8k.png"
TEST_SETS = {
    "voices-test": "voices-test (10 unseen real speakers, docs/DATA.md)",
    "real-test": "real-test (5 unseen real speakers)",
    "synth-test": "synth-test (unseen eSpeak NG voices)",
}


def _history() -> list[dict[str, Any]]:
    return [e for e in _load(TRAIN_STATE)["history"] if "valid" in e]


def training_curve(every: int = 500) -> str:
    """Validation SI-SNRi against CPU time, every ``every`` steps and at the best step."""
    card = _load(ZOO / "convtasnet-tiny-8k.json")
    best = card["training"]["step"]
    history = _history()
    rows = [
        [
            f"**{e['step']}**" if e["step"] == best else str(e["step"]),
            f"{e['cpu_minutes']:.0f}",
            f"{e['lr']:.1e}",
            *(f"{v:.2f}" for k, v in e["valid"].items() if k != "mean"),
        ]
        for e in history
        if e["step"] % every == 0 or e["step"] == best or e is history[-1]
    ]
    sets = [k for k in history[0]["valid"] if k != "mean"]
    head = ["step", "CPU-minutes", "learning rate", *(f"{s} SI-SNRi" for s in sets)]
    changes = "; ".join(
        f"step {c['step']}: "
        + ", ".join(
            f"{k} {v[0]} -> {v[1]}"
            for k, v in c.items()
            # fields new to the code since the run began have no old value; out_dir is no recipe
            if k not in ("step", "out_dir") and v[0] is not None
        )
        for c in _load(TRAIN_STATE).get("config_changes", [])
    )
    note = f"Bold: the bundled weights. Recipe changes on resume: {changes}."
    return "\n\n".join(x for x in [_table(head, rows, "---:"), note] if x)


def plot_training_curve() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = _history()
    cpu = [e["cpu_minutes"] for e in history]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k in (k for k in history[0]["valid"] if k != "mean"):
        ax.plot(cpu, [e["valid"][k] for e in history], label=f"{k} SI-SNRi")
    ax.set_xlabel("training CPU-minutes (one thread)")
    ax.set_ylabel("dB")
    ax2 = ax.twinx()
    ax2.semilogy(cpu, [e["lr"] for e in history], color="grey", lw=0.8, ls="--")
    ax2.set_ylabel("learning rate (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    TRAIN_CURVE_PNG.parent.mkdir(exist_ok=True)
    fig.savefig(TRAIN_CURVE_PNG, dpi=110)


def training_results() -> str:
    card = _load(ZOO / "convtasnet-tiny-8k.json")
    rows = []
    for key, label in TEST_SETS.items():
        m = card["metrics"].get(key)
        if m is None:
            continue
        irm = m["oracle_irm"]
        rows.append(
            [
                f"{label}, {m['n_files']} mixtures",
                card["name"],
                f"{m['si_snri']:.2f} ({m['si_snri_median']:.2f})",
                f"{m['sdri']:.2f} ({m['sdri_median']:.2f})",
            ]
        )
        rows.append(
            [
                "",
                "oracle ideal ratio mask",
                f"{irm['si_snri']:.2f} ({irm['si_snri_median']:.2f})",
                f"{irm['sdri']:.2f} ({irm['sdri_median']:.2f})",
            ]
        )
    head = ["test set", "system", "SI-SNRi mean (median)", "SDRi mean (median)"]
    return (
        measured_on({"model_weights_sha256": card["weights_sha256"]}) + "\n\n" + _table(head, rows)
    )


BLOCKS: list[tuple[Path, str, Callable[[], str]]] = [
    (DOCS / "COMPRESSION.md", "compress-targets", compress_targets),
    (DOCS / "COMPRESSION.md", "compress-tanwang", compress_tanwang),
    (DOCS / "QUANTIZATION.md", "quant-w8a8", quant_w8a8),
    (DOCS / "QUANTIZATION.md", "quant-w4a8", quant_w4a8),
    (DOCS / "QUANTIZATION.md", "quant-edge-ort", quant_edge),
    (DOCS / "TRAINING.md", "training-curve", training_curve),
    (DOCS / "TRAINING.md", "training-results", training_results),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args()
    stale = []
    for doc in dict.fromkeys(path for path, _, _ in BLOCKS):
        text = doc.read_text()
        new = text
        for path, tag, render in BLOCKS:
            if path == doc:
                new = splice(new, tag, render())
        if new != text:
            stale.append(doc.relative_to(ROOT))
            if not args.check:
                doc.write_text(new)
    if not args.check:
        plot_training_curve()
    verb = "differ from their results" if args.check else "rewritten"
    print(f"{verb}: {', '.join(map(str, stale))}" if stale else "docs match their results")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
