"""The benchmark manifest: everything needed to re-run a benchmark and check it came out the same.

It records the git commit (and whether the tree had uncommitted changes), the whole config,
the seed and thread count, every model artifact's SHA-256, every test set's card and a hash of
its files, package versions and the CPU. ``edgesep bench --reproduce MANIFEST.json`` re-runs the
config and compares (:func:`compare`): quality figures must be identical (same data, same
weights, same arithmetic), timings only within the spread of the original runs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgesep.config import to_dict
from edgesep.sysinfo import cpu_description

FORMAT = "edgesep-bench-manifest"
PACKAGES = (
    "edgesep",
    "torch",
    "numpy",
    "scipy",
    "onnx",
    "onnxruntime",
    "soundfile",
    "soxr",
    "fast-bss-eval",
    "matplotlib",
)
QUALITY_DECIMALS = 4


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """The commit of the working tree and whether it had changes; nulls outside a checkout."""

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(folder: str | Path) -> str:
    """One hash of every file under ``folder``: relative paths and contents, in sorted order."""
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()


def build_manifest(
    config: Any, rows: list[dict[str, Any]], references: dict[str, Any]
) -> dict[str, Any]:
    """The manifest of a finished run of ``config`` (a BenchConfig)."""
    models = {}
    for row in rows:
        # exported files are rebuilt by a re-run; their hashes show whether export changed
        models[row["name"]] = {k: row.get(k) for k in ("model", "artifact", "artifact_sha256")}
    data = {}
    for test in config.test_sets:
        card = references.get(test.name, {}).get("data", {})
        data[test.name] = {
            "dir": test.dir,
            "max_items": test.max_items,
            "card": card.get("card"),
            "card_sha256": card.get("card_sha256"),
            "files_sha256": folder_sha256(test.dir),
        }
    return {
        "format": FORMAT,
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "git": git_state(),
        "config": to_dict(config),
        "seed": config.seed,
        "threads": config.profile.threads,
        "host": {
            "cpu": cpu_description(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "packages": package_versions(),
        "models": models,
        "data": data,
    }


def _quality(results: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for row in results["rows"]:
        for test, q in row["quality"].items():
            for metric in ("si_snri", "sdri"):
                flat[f"{row['name']} | {test} | {metric}"] = round(q[metric], QUALITY_DECIMALS)
    for test, refs in results["references"].items():
        for system, q in refs["systems"].items():
            for metric, value in q.items():
                flat[f"{system} | {test} | {metric}"] = round(value, QUALITY_DECIMALS)
    return flat


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Quality must match exactly (to 4 decimals, as stored); a timing p50 must fall within
    the original run's [min, max]; data hashes must match."""
    checks: list[dict[str, Any]] = []
    for name, info in old["manifest"]["data"].items():
        got = new["manifest"]["data"].get(name, {}).get("files_sha256")
        checks.append(
            {
                "kind": "data",
                "what": name,
                "old": info["files_sha256"],
                "new": got,
                "ok": got == info["files_sha256"],
            }
        )
    q_old, q_new = _quality(old), _quality(new)
    for key, value in q_old.items():
        checks.append(
            {
                "kind": "quality",
                "what": key,
                "old": value,
                "new": q_new.get(key),
                "ok": q_new.get(key) == value,
            }
        )
    new_rows = {r["name"]: r for r in new["rows"]}
    for row in old["rows"]:
        was, now = row["latency"]["compute"], new_rows.get(row["name"], {}).get("latency", {})
        if was is None or not now or now.get("compute") is None:
            continue
        p50 = now["compute"]["p50_ms"]
        checks.append(
            {
                "kind": "timing",
                "what": f"{row['name']} | compute p50 ms",
                "old": was,
                "new": p50,
                "ok": was["min_ms"] <= p50 <= was["max_ms"],
            }
        )
    return {
        "quality_identical": all(c["ok"] for c in checks if c["kind"] in ("quality", "data")),
        "timings_within_spread": all(c["ok"] for c in checks if c["kind"] == "timing"),
        "checks": checks,
    }
