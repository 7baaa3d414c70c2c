"""int8 streaming: quantize a step graph and compare stream vs offline, int8 vs fp32.

The step graph is quantized with :func:`edgesep.export.stream_int8.quantize_step_int8`
(static QDQ, Conv inputs and weights; ranges from the fp32 graph streaming ``--calib`` validation
mixtures). On ``--n`` test mixtures it reports, as SI-SNR in dB (mean and minimum over files and
sources):

- int8 stream (pushes of odd sizes) vs the same int8 graph run offline in one call: what
  streaming adds to quantization (the issue's target is >= 40 dB);
- int8 vs fp32 (both offline): what quantization costs;
- the SI-SNRi of fp32 and int8 against the references (permutation-invariant).

Usage: python benchmarks/runtime_int8.py [--model convtasnet-tiny-edge-stream-8k]
       [--out out/runtime-int8/model.int8.onnx] [--n 50] [--calib 20]
"""

from __future__ import annotations

import argparse
import json
from itertools import permutations
from pathlib import Path

import numpy as np
import soundfile as sf

from edgesep.export.stream_int8 import quantize_step_int8
from edgesep.runtime import Model, StreamingSession
from edgesep.runtime.model import resolve


def si_snr(est: np.ndarray, ref: np.ndarray) -> float:
    est, ref = est - est.mean(), ref - ref.mean()
    target = (est @ ref) / (ref @ ref + 1e-12) * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target) + 1e-20)))


def pit_si_snr(est: np.ndarray, refs: np.ndarray) -> float:
    return max(
        float(np.mean([si_snr(est[i], refs[j]) for i, j in enumerate(p)]))
        for p in permutations(range(len(refs)))
    )


def stream(model: Model, x: np.ndarray, sizes: tuple[int, ...] = (1, 37, 200, 513)) -> np.ndarray:
    s = StreamingSession(model, rescale=False)
    outs, a, i = [], 0, 0
    while a < len(x):
        outs.append(s.push(x[a : a + sizes[i % len(sizes)]]))
        a, i = a + sizes[i % len(sizes)], i + 1
    outs.append(s.flush())
    return np.concatenate(outs, axis=-1)[:, s.delay :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="convtasnet-tiny-edge-stream-8k")
    ap.add_argument("--out", type=Path, default=Path("out/runtime-int8/model.int8.onnx"))
    ap.add_argument("--calib-dir", type=Path, default=Path("data/mix8k/synth-valid/mix"))
    ap.add_argument("--test-dir", type=Path, default=Path("data/mix8k/real-test"))
    ap.add_argument("--calib", type=int, default=20)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument(
        "--calib-hops",
        type=int,
        default=100,
        help="hops per calibration call: ranges do not depend on it, the calibrator's time does",
    )
    args = ap.parse_args()
    fp32_path = resolve(args.model)
    calib = [sf.read(p, dtype="float32")[0] for p in sorted(args.calib_dir.glob("*.wav"))]
    quantize_step_int8(fp32_path, args.out, calib[: args.calib], hops_per_step=args.calib_hops)
    fp32, int8 = Model(fp32_path), Model(args.out)
    rows: dict[str, list[float]] = {k: [] for k in ("stream", "quant", "sisnri32", "sisnri8")}
    for path in sorted((args.test_dir / "mix").glob("*.wav"))[: args.n]:
        x, _ = sf.read(path, dtype="float32")
        refs = np.stack(
            [sf.read(args.test_dir / s / path.name, dtype="float32")[0] for s in ("s1", "s2")]
        )
        off8, off32 = int8.run_offline(x[None])[:, 0], fp32.run_offline(x[None])[:, 0]
        st8 = stream(int8, x)
        rows["stream"] += [si_snr(st8[i], off8[i]) for i in range(2)]
        rows["quant"] += [si_snr(off8[i], off32[i]) for i in range(2)]
        base = float(np.mean([si_snr(x, r) for r in refs]))
        rows["sisnri32"].append(pit_si_snr(off32, refs) - base)
        rows["sisnri8"].append(pit_si_snr(off8, refs) - base)
    summary = {
        k: {"mean": round(float(np.mean(v)), 2), "min": round(float(np.min(v)), 2)}
        for k, v in rows.items()
    }
    summary["int8_bytes"] = args.out.stat().st_size
    summary["fp32_bytes"] = fp32_path.stat().st_size
    summary["n_files"] = len(rows["sisnri32"])
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
