"""Peak RAM and speed of `edgesep separate` on long files: 1 minute vs 60 minutes.

Each run is a separate process (`edgesep separate`), measured by its resident-set high-water mark
(getrusage of the child). The input is the bundled example mixture repeated to the length.

Usage: python benchmarks/separate_memory.py [--minutes 1 60] [--model convtasnet-tiny-8k]
       [--threads 1] [--out out/bench-memory]
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


def run_one(inp: Path, out: Path, model: str, threads: int) -> dict[str, float]:
    """Run `edgesep separate` in a child process; its own peak RSS comes from wait4."""
    cmd = [
        sys.executable,
        "-m",
        "edgesep.cli.main",
        "separate",
        str(inp),
        "-o",
        str(out),
        "--model",
        model,
        "--threads",
        str(threads),
    ]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 60])
    ap.add_argument("--model", default="convtasnet-tiny-8k")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/bench-memory"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for minutes in sorted(args.minutes):
        inp = args.out / f"input_{minutes:g}min.wav"
        seconds = make_input(inp, minutes)
        res = run_one(inp, args.out / "stems", args.model, args.threads)
        res.update(minutes=minutes, rtf=round(res["wall_s"] / seconds, 4))
        rows.append(res)
        print(json.dumps(res), flush=True)
        inp.unlink()
    (args.out / "results.json").write_text(
        json.dumps(
            {"model": args.model, "threads": args.threads, "cpu": cpu_description(), "rows": rows},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
