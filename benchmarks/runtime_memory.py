"""Offline separation of long files with the torch-free runtime: peak RSS and time vs length.

Each file is separated by ``edgesep.runtime.OfflineSession.separate_file`` in a fresh child process
that imports only numpy, onnxruntime, soundfile and soxr (no torch) and reports its own
resident-set high-water mark (``VmHWM``, as :mod:`edgesep.bench.memprobe` does: a child's
``ru_maxrss`` would include the parent's pre-exec memory) and the wall time of the separation
alone. A second child imports the same modules and separates nothing (the baseline). The inputs
are real-speaker test mixtures (``data/mix8k/real-test/mix``) concatenated to the length, written
block by block to ``--work`` (not committed).

Usage: python benchmarks/runtime_memory.py [--model convtasnet-tiny-edge-stream-8k]
       [--minutes 1 10 60] [--threads 1] [--work out/runtime-long] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SRC = Path(__file__).resolve().parents[1] / "src"
CHILD = """
import json, sys, time
mode, model, inp, out, threads = sys.argv[1:6]
from edgesep.runtime import OfflineSession
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1])
t = 0.0
if mode == 'run':
    sep = OfflineSession(model, threads=int(threads))
    t0 = time.perf_counter()
    sep.separate_file(inp, out)
    t = time.perf_counter() - t0
print(json.dumps({'peak_rss_kib': hwm(), 'seconds': t, 'torch': 'torch' in sys.modules}))
"""


def make_input(path: Path, minutes: float, mix_dir: Path) -> float:
    """Concatenate the test mixtures (cycling) into ``path`` up to ``minutes``; returns seconds."""
    files = sorted(mix_dir.glob("*.wav"))
    if not files:
        raise SystemExit(f"{mix_dir}: no mixtures (bash scripts/make_speech_data.sh)")
    sr = sf.info(str(files[0])).samplerate
    n_total = int(minutes * 60 * sr)
    if path.is_file() and sf.info(str(path)).frames == n_total:
        return n_total / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", sr, 1, "PCM_16") as fh:
        written, i = 0, 0
        while written < n_total:
            x, _ = sf.read(files[i % len(files)], dtype="float32")
            block = x[: n_total - written]
            fh.write(block)
            written, i = written + len(block), i + 1
    return n_total / sr


def child(mode: str, model: str, inp: Path, out: Path, threads: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-c", CHILD, mode, model, str(inp), str(out), str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise SystemExit(f"child failed: {res.stderr.strip().splitlines()[-1:]}")
    report: dict[str, float] = json.loads(res.stdout.strip().splitlines()[-1])
    if report["torch"]:
        raise SystemExit("the runtime child imported torch")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="convtasnet-tiny-edge-stream-8k")
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mix-dir", type=Path, default=Path("data/mix8k/real-test/mix"))
    ap.add_argument("--work", type=Path, default=Path("out/runtime-long"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    base = child("baseline", args.model, Path("-"), Path("-"), args.threads)
    rows = []
    for minutes in args.minutes:
        inp = args.work / f"mix_{minutes:g}min.wav"
        seconds = make_input(inp, minutes, args.mix_dir)
        rep = child("run", args.model, inp, args.work / "sep", args.threads)
        rows.append(
            {
                "minutes": minutes,
                "audio_seconds": seconds,
                "peak_rss_mb": round(rep["peak_rss_kib"] / 1024, 1),
                "baseline_rss_mb": round(base["peak_rss_kib"] / 1024, 1),
                "wall_seconds": round(rep["seconds"], 2),
                "rtf": round(rep["seconds"] / seconds, 4),
                "seconds_per_audio_minute": round(rep["seconds"] / (seconds / 60), 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print("| minutes | peak RSS MB (import-only baseline) | wall s | RTF | s per audio minute |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['minutes']:g} | {r['peak_rss_mb']} ({r['baseline_rss_mb']}) | "
            f"{r['wall_seconds']} | {r['rtf']} | {r['seconds_per_audio_minute']} |"
        )
    if len(rows) > 1:  # time linear in length: a line through the origin fits
        x = np.array([r["audio_seconds"] for r in rows])
        y = np.array([r["wall_seconds"] for r in rows])
        slope = float(x @ y / (x @ x))
        worst = float(np.max(np.abs(y - slope * x) / (slope * x)))
        print(f"linear fit: {slope:.4f} s per audio second; worst relative deviation {worst:.1%}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "rows": rows, "time": time.time()}))


if __name__ == "__main__":
    main()
