"""Peak RAM of one inference, measured in fresh child processes.

Each measurement runs two children of :mod:`edgesep.bench.memprobe`: one loads the model and
separates a fixed length of seeded noise, the other imports the same libraries and loads
nothing. Each reports its own resident-set high-water mark; the difference is the inference's
own memory (weights, activations, buffers, runtime pools), which is what a device must have
free beyond the interpreter and libraries. A fresh process per figure means nothing the parent
allocated, cached or fragmented counts.

The children report ``VmHWM`` themselves rather than the parent reading ``ru_maxrss`` from
``os.wait4``: on Linux a child's ``ru_maxrss`` includes its parent's address space from before
``exec`` (see :mod:`edgesep.bench.memprobe`), so it could never read below the parent's peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from edgesep.bench import memprobe
from edgesep.errors import InputError

BACKENDS = ("torch", "ort")
_STDERR_LINES = 5


def peak_rss(
    backend: str,
    model: str | Path,
    seconds: float = 10.0,
    threads: int = 1,
    timeout_s: float = 600,
) -> dict[str, Any]:
    """Peak resident memory of running ``model`` once on ``seconds`` of audio, in MiB.

    ``backend="torch"``: ``model`` is anything ``edgesep.zoo.load(..., allow_untrained=True)``
    accepts, run through ``model.separate`` (chunked, as users run it) on mono noise.
    ``backend="ort"``: ``model`` is an ``.onnx`` file; an offline graph runs once on
    (1, C, seconds * sample_rate), a step graph runs as many steps as cover that, carrying its
    state. The sample rate comes from the file's ``edgesep.sample_rate`` metadata.

    Returns backend, model, seconds, threads, ``peak_rss_mb`` (the model child),
    ``baseline_rss_mb`` (the import-only child), ``model_rss_mb`` (their difference) and
    ``wall_s`` (the model child's wall time, start-up included). Raises ValueError for a bad
    argument and RuntimeError, with the child's last stderr lines, when a child fails.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if not seconds > 0:
        raise InputError(f"seconds must be positive, got {seconds}")
    if threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    if not timeout_s > 0:
        raise InputError(f"timeout_s must be positive, got {timeout_s}")
    # the model child first: a bad model fails before the baseline is paid for
    peak_kib, wall = _run_probe(backend, str(model), seconds, threads, timeout_s)
    base_kib, _ = _run_probe(f"baseline-{backend}", str(model), seconds, threads, timeout_s)
    peak_mb, base_mb = round(peak_kib / 1024, 2), round(base_kib / 1024, 2)
    return {
        "backend": backend,
        "model": str(model),
        "seconds": seconds,
        "threads": threads,
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": base_mb,
        "model_rss_mb": round(peak_mb - base_mb, 2),
        "wall_s": round(wall, 3),
    }


def probe_command(mode: str, model: str, seconds: float, threads: int) -> list[str]:
    """The child's command line. The probe runs as a script with ``-P`` (its own folder not on
    ``sys.path``) so the ORT child never imports ``edgesep.bench`` and, through it, torch."""
    return [
        sys.executable,
        "-P",
        str(Path(memprobe.__file__).resolve()),
        mode,
        model,
        "--seconds",
        repr(float(seconds)),
        "--threads",
        str(threads),
    ]


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    # idle OpenMP workers would otherwise spin, burning the CPU the other children need
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _run_probe(
    mode: str, model: str, seconds: float, threads: int, timeout_s: float
) -> tuple[int, float]:
    """Run one probe child; returns (its peak RSS in KiB, its wall time in seconds)."""
    cmd = probe_command(mode, model, seconds, threads)
    # files, not pipes: a chatty child cannot fill a pipe and block while we wait for it
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=_child_env(threads))
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(
                f"memprobe {mode} {model}: no result within {timeout_s:g} s"
            ) from None
        wall = time.perf_counter() - t0
        stdout, stderr = _read(out), _read(err)
    if code != 0:
        tail = " | ".join(stderr.strip().splitlines()[-_STDERR_LINES:]) or "(no stderr)"
        raise RuntimeError(f"memprobe {mode} {model} failed (exit {code}): {tail}")
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
        return int(report["peak_rss_kib"]), wall
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"memprobe {mode} {model}: unreadable report {stdout!r}") from exc


def _read(fh: IO[bytes]) -> str:
    fh.seek(0)
    return fh.read().decode(errors="replace")
