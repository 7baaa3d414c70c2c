"""Device profiles: the target's peak compute, an energy model and the edge budgets it must meet.

A profile is a YAML file (the bundled ones live in ``bench/devices/``) loaded through
:mod:`edgesep.config`, so a misspelt key or a missing field fails naming the file. Two kinds:

- ``host``: the machine running the benchmark, whose figures are measured. Its ``cpu``, ``cores``,
  ``clock_ghz`` and ``ram_mb`` are read from the live machine at load time.
- ``reference``: a device we do not run on (Raspberry Pi 3/5, STM32H7). Its latency is *projected*
  from the host's by the ratio of peak MAC rates, and its energy is *estimated* from per-operation
  figures; both are labelled so wherever they are reported.

The budgets follow the edge separation literature (latency <= 100 ms, model 1-5 MB, RAM 10-50 MB,
real-time factor < 1), adapted per device in the YAML with the reason in a comment.

References: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014
(45 nm energy per operation); Han et al., "EIE", ISCA 2016, Table I (32-bit DRAM access 640 pJ,
SRAM 5 pJ); vendor spec sheets named in each profile's ``sources``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgesep.config import from_dict, load_file
from edgesep.errors import InputError
from edgesep.registry import Registry
from edgesep.sysinfo import cpu_description

KINDS = ("host", "reference")
DTYPES = ("fp32", "fp16", "int8")
BUDGET_KEYS = ("latency_ms", "model_mb", "ram_mb", "rtf")
PROFILE_DIR = Path(__file__).with_name("devices")
HOST_NAME = "this-machine"


@dataclass(frozen=True)
class Budgets:
    """What a model must stay within on a device; MB are 1e6 bytes.

    ``latency_ms`` is the total (algorithmic lookahead + compute), ``model_mb`` the artifact's bytes
    on disk, ``ram_mb`` the inference RAM over the runtime's baseline, and the real-time factor
    must stay strictly below ``rtf``.
    """

    latency_ms: float = 100.0
    model_mb: float = 5.0
    ram_mb: float = 50.0
    rtf: float = 1.0

    def __post_init__(self) -> None:
        for key in BUDGET_KEYS:
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"budget {key} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class DeviceProfile:
    """One device: its peak MAC rate per core, an energy model (an estimate) and its budgets.

    ``*_macs_per_cycle`` are per-core peaks (SIMD lanes x FMA pipes); ``pj_per_*`` are energy per
    MAC and per byte moved, the byte figure for the memory the profile's YAML names (DRAM on the
    boards, SRAM/flash on a microcontroller).
    """

    name: str
    description: str
    kind: str
    cpu: str
    cores: int
    clock_ghz: float
    ram_mb: float
    fp32_macs_per_cycle: float
    int8_macs_per_cycle: float
    pj_per_mac_fp32: float
    pj_per_mac_int8: float
    pj_per_byte: float
    budgets: Budgets
    sources: tuple[str, ...] = ()
    # a microcontroller: weights in this much flash, activations in ``ram_mb`` of SRAM; its
    # figures are computed from the model (edgesep.bench.mcu), never scaled from host timings
    flash_mb: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.name:
            raise InputError("name must not be empty")
        if not isinstance(self.budgets, Budgets):
            raise InputError(f"budgets must be a mapping of budget figures, got {self.budgets!r}")
        if not all(isinstance(s, str) for s in self.sources) or isinstance(self.sources, str):
            raise InputError(f"sources must be a list of strings, got {self.sources!r}")
        if self.cores < 1:
            raise InputError(f"cores must be >= 1, got {self.cores}")
        for key in (
            "clock_ghz",
            "ram_mb",
            "fp32_macs_per_cycle",
            "int8_macs_per_cycle",
            "pj_per_mac_fp32",
            "pj_per_mac_int8",
            "pj_per_byte",
        ):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{key} must be a positive number, got {value!r}")
        if self.flash_mb is not None:
            if not (math.isfinite(self.flash_mb) and self.flash_mb > 0):
                raise InputError(f"flash_mb must be a positive number, got {self.flash_mb!r}")
            if self.budgets.model_mb > self.flash_mb or self.budgets.ram_mb > self.ram_mb:
                raise InputError(
                    f"{self.name}: budgets model_mb / ram_mb exceed the chip's flash_mb / ram_mb"
                )


def _bundled() -> Registry[Path]:
    registry: Registry[Path] = Registry("device profile")
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        registry.add(path.stem, path)
    return registry


DEVICES: Registry[Path] = _bundled()
"""Bundled profiles: name (the YAML file's stem) -> path."""


def list_devices() -> list[str]:
    """Names of the bundled device profiles, sorted."""
    return DEVICES.names()


def _resolve(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, str) and name_or_path in DEVICES:
        return DEVICES.get(name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(list_devices()) or "none"
        raise FileNotFoundError(
            f"{path}: no such device profile file, and not a bundled profile (known: {known})"
        )
    return path


def load_device(name_or_path: str | Path) -> DeviceProfile:
    """A bundled profile by name, or a profile YAML by path; a ``host`` profile gets live figures.

    Every error (unreadable YAML, unknown key, missing field, bad value) is one line naming the
    file.
    """
    path = _resolve(name_or_path)
    data = load_file(path)
    try:
        profile = from_dict(DeviceProfile, data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad device profile: {exc}") from None
    if profile.name != path.stem and path.parent == PROFILE_DIR:
        raise InputError(f"{path}: name {profile.name!r} differs from the file name")
    return _with_live_host(profile) if profile.kind == "host" else profile


def _cpuinfo_mhz(text: str) -> float | None:
    """The highest "cpu MHz" in /proc/cpuinfo text (closest to the clock under load), or None."""
    values = []
    for line in text.splitlines():
        if line.startswith("cpu MHz") and ":" in line:
            try:
                values.append(float(line.split(":", 1)[1]))
            except ValueError:
                continue
    good = [v for v in values if math.isfinite(v) and v > 0]
    return max(good) if good else None


def _meminfo_mb(text: str) -> float | None:
    """MemTotal from /proc/meminfo text, in MB (1e6 bytes), or None."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024 / 1e6
    return None


def _read(path: str) -> str:
    p = Path(path)
    return p.read_text(errors="replace") if p.is_file() else ""


def _with_live_host(profile: DeviceProfile) -> DeviceProfile:
    """``profile`` with cpu, cores, clock and RAM of the machine running this; YAML as fallback."""
    mhz = _cpuinfo_mhz(_read("/proc/cpuinfo"))
    ram = _meminfo_mb(_read("/proc/meminfo"))
    return replace(
        profile,
        cpu=cpu_description(),
        cores=os.cpu_count() or profile.cores,
        clock_ghz=mhz / 1000.0 if mhz is not None else profile.clock_ghz,
        ram_mb=ram if ram is not None else profile.ram_mb,
    )


def host_profile() -> DeviceProfile:
    """The ``this-machine`` profile with the live machine's cpu, cores, clock and RAM."""
    return load_device(HOST_NAME)


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return "int8" if dtype == "int8" else "fp32"


def peak_macs_per_second(device: DeviceProfile, dtype: str = "fp32", threads: int = 1) -> float:
    """Peak MAC/s: clock x MACs per cycle x min(threads, cores).

    ``fp16`` counts at the fp32 rate: CPU runtimes (ONNX Runtime, PyTorch) compute fp16 models
    in fp32 on these cores, so half precision saves bytes, not cycles.
    """
    if threads < 1:
        raise InputError(f"threads must be >= 1, got {threads}")
    rate = (
        device.int8_macs_per_cycle if _check_dtype(dtype) == "int8" else device.fp32_macs_per_cycle
    )
    return device.clock_ghz * 1e9 * rate * min(threads, device.cores)


def project_seconds(
    measured_s: float,
    host: DeviceProfile,
    device: DeviceProfile,
    dtype: str = "fp32",
    threads: int = 1,
) -> float:
    """Project a time measured on ``host`` to ``device``: measured x peak(host) / peak(device).

    The assumption is that the device reaches the same fraction of its peak as the host did. That
    ignores memory bandwidth and cache size, so the result is a projection, to be labelled so.
    """
    if not (math.isfinite(measured_s) and measured_s >= 0):
        raise InputError(f"measured_s must be a non-negative number, got {measured_s!r}")
    ratio = peak_macs_per_second(host, dtype, threads) / peak_macs_per_second(
        device, dtype, threads
    )
    return measured_s * ratio


def energy_estimate(
    macs_per_second: float, bytes_per_second: float, device: DeviceProfile, dtype: str = "fp32"
) -> dict[str, Any]:
    """Energy per second of audio (mJ) from MACs and bytes moved per audio second.

    MACs x pJ/MAC + bytes x pJ/byte with the device profile's figures (1 pJ = 1e-9 mJ). It leaves
    out static power, caches and everything but arithmetic and memory traffic: an estimate.
    """
    kind = _check_dtype(dtype)
    for key, value in (
        ("macs_per_second", macs_per_second),
        ("bytes_per_second", bytes_per_second),
    ):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{key} must be a non-negative number, got {value!r}")
    pj_per_mac = device.pj_per_mac_int8 if kind == "int8" else device.pj_per_mac_fp32
    compute_mj = macs_per_second * pj_per_mac * 1e-9
    memory_mj = bytes_per_second * device.pj_per_byte * 1e-9
    return {
        "mj_per_audio_second": compute_mj + memory_mj,
        "compute_mj": compute_mj,
        "memory_mj": memory_mj,
        "device": device.name,
        "dtype": dtype,
        "label": "estimate",
        "formula": "MACs*pJ/MAC + bytes*pJ/byte (device profile)",
    }


def check_budgets(
    figures: Mapping[str, float | None], budgets: Budgets
) -> dict[str, dict[str, Any]]:
    """Each budget's value, limit and verdict; keys other than the four budgets are ignored.

    A figure passes when value <= limit, except the real-time factor, which must stay strictly
    below its limit (RTF 1.0 means no headroom at all). A missing or None figure gets
    ``"pass": None`` and ``"why": "not measured"``.
    """
    out: dict[str, dict[str, Any]] = {}
    for key in BUDGET_KEYS:
        limit = float(getattr(budgets, key))
        value = figures.get(key)
        if value is None:
            out[key] = {"value": None, "limit": limit, "pass": None, "why": "not measured"}
            continue
        ok = value < limit if key == "rtf" else value <= limit
        out[key] = {"value": float(value), "limit": limit, "pass": bool(ok)}
    return out
