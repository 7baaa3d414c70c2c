"""Peak RAM of `edgesep separate` on long files, with PyTorch and with the exported ONNX graph.

Each run is a separate `edgesep separate` process that reports its own resident-set high-water
mark (VmHWM). The input is the bundled example mixture repeated to the length. Wall times are
kept in the result too, but say little on a shared machine.

Usage: python benchmarks/separate_memory.py [--minutes 1 10] [--model convtasnet-tiny-8k]
       [--threads 1] [--out out/bench-memory] [--readme]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

from edgesep.sysinfo import cpu_description
from edgesep.zoo import EXAMPLES_DIR

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "separate-memory.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- separate-memory: begin -->", "<!-- separate-memory: end -->"


def make_input(path: Path, minutes: float) -> float:
    """Write the example mixture tiled to ``minutes``, block by block; returns seconds."""
    mix, sr = sf.read(EXAMPLES_DIR / "two_speakers_8k.wav", dtype="float32")
    n_total = int(minutes * 60 * sr)
    with sf.SoundFile(path, "w", sr, 1, "PCM_16") as fh:
        written = 0
        while written < n_total:
            block = mix[: n_total - written]
            fh.write(block)
            written += len(block)
    return n_total / sr


# Runs the CLI in this child's own process and, however it ends, writes the process's VmHWM
# (its resident-set high-water mark, from /proc/self/status) to the file named in argv[1].
_WRAPPER = """
import sys
from edgesep.cli.main import main
out, sys.argv = sys.argv[1], ["edgesep", *sys.argv[2:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
open(out, "w").write(hwm)
sys.exit(code)
"""


def run_one(inp: Path, out: Path, model: str, threads: int) -> dict[str, float]:
    """Run `edgesep separate` in a child process that reports its own peak RSS (VmHWM).

    Not the parent's wait4 rusage: Linux folds the parent's address space (torch loaded here)
    into a vfork-started child's ru_maxrss, so that figure can never be below the parent's peak
    (see edgesep/bench/memprobe.py)."""
    hwm = out.parent / "vmhwm_kib.txt"
    args = ["separate", str(inp), "-o", str(out), "--model", model, "--threads", str(threads)]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(hwm), *args], stdout=subprocess.DEVNULL, env=env
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"edgesep {' '.join(args)} failed")
    return {"peak_rss_mb": round(int(hwm.read_text()) / 1024, 1), "wall_s": round(wall, 2)}


def readme_line(results: dict) -> str:
    """The README's sentence on long-file memory, from the results."""
    parts = []
    labels = {
        "torch": "`edgesep separate` with PyTorch",
        "onnx": "`edgesep separate -m model.onnx`",
    }
    for path, label in labels.items():
        rows = [r for r in results["rows"] if r["path"] == path]
        figures = " / ".join(f"{r['peak_rss_mb']:.0f}" for r in rows)
        minutes = " / ".join(f"{r['minutes']:g}" for r in rows)
        parts.append(f"{label} {figures} MB ({minutes} min)")
    cmd = "python benchmarks/separate_memory.py --minutes 1 10 --readme"
    return (
        f"peak RSS of the whole process: {'; '.join(parts)} "
        f"(`{cmd}`, {results['cpu']}, 1 thread; benchmarks/results/separate-memory.json)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    ap.add_argument("--model", default="convtasnet-tiny-8k")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/bench-memory"))
    ap.add_argument("--readme", action="store_true", help="rewrite README's memory sentence")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from edgesep.bench.memory import peak_rss
    from edgesep.export import export_onnx
    from edgesep.zoo import load

    onnx_path = export_onnx(load(args.model), args.out / f"{args.model}.onnx")
    rows = []
    for minutes in sorted(args.minutes):
        inp = args.out / f"input_{minutes:g}min.wav"
        seconds = make_input(inp, minutes)
        for path, model in (("torch", args.model), ("onnx", str(onnx_path))):
            res = run_one(inp, args.out / "stems", model, args.threads)
            res.update(path=path, minutes=minutes, rtf=round(res["wall_s"] / seconds, 4))
            rows.append(res)
            print(json.dumps(res), flush=True)
        inp.unlink()
        # the graph alone in a torch-free process (numpy + onnxruntime), via bench.memory: ONE
        # call on the whole signal, unchunked, so it grows with the length (kept for reference;
        # the runtime's OfflineSession chunks like `separate` does)
        probe = peak_rss("ort", onnx_path, seconds=minutes * 60, threads=args.threads)
        res = {"path": "runtime", "minutes": minutes, **probe}
        rows.append(res)
        print(json.dumps(res), flush=True)
    results = {
        "note": "torch and onnx: the edgesep separate CLI (chunked, streamed from the file); "
        "runtime: bench.memory's ort probe, one unchunked call on the whole signal",
        "model": args.model,
        "threads": args.threads,
        "cpu": cpu_description(),
        "rows": rows,
    }
    RESULT.write_text(json.dumps(results, indent=2) + "\n")
    if args.readme:
        text = README.read_text()
        begin, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(text[:begin] + readme_line(results) + text[end:])


if __name__ == "__main__":
    main()
