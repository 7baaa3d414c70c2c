"""Device profiles load and validate; peaks, projections, energy and budgets hand-computed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgesep.bench.devices import (
    DEVICES,
    Budgets,
    DeviceProfile,
    check_budgets,
    energy_estimate,
    host_profile,
    list_devices,
    load_device,
    peak_macs_per_second,
    project_seconds,
)
from edgesep.config import to_dict
from edgesep.sysinfo import cpu_description

BUNDLED = ["rpi3-cortex-a53", "rpi5-cortex-a76", "stm32h7-cortex-m7", "this-machine"]


def _profile(**changes: object) -> DeviceProfile:
    fields: dict[str, object] = dict(
        name="toy",
        description="toy device",
        kind="reference",
        cpu="toy cpu",
        cores=4,
        clock_ghz=2.0,
        ram_mb=1000.0,
        fp32_macs_per_cycle=8.0,
        int8_macs_per_cycle=32.0,
        pj_per_mac_fp32=4.6,
        pj_per_mac_int8=0.3,
        pj_per_byte=160.0,
        budgets=Budgets(),
    )
    fields.update(changes)
    return DeviceProfile(**fields)  # type: ignore[arg-type]


def test_bundled_names() -> None:
    assert list_devices() == BUNDLED
    assert all(DEVICES.get(n).is_file() for n in BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_profile_loads_and_validates(name: str) -> None:
    d = load_device(name)
    assert d.name == name and d.kind in {"host", "reference"}
    assert d.cores >= 1 and d.clock_ghz > 0 and d.ram_mb > 0
    assert d.fp32_macs_per_cycle > 0 and d.int8_macs_per_cycle >= d.fp32_macs_per_cycle
    assert d.pj_per_mac_int8 < d.pj_per_mac_fp32 and d.pj_per_byte > 0
    assert all(getattr(d.budgets, k) > 0 for k in ("latency_ms", "model_mb", "ram_mb", "rtf"))
    assert d.sources and any("Horowitz" in s for s in d.sources)
    assert load_device(DEVICES.get(name)) == d  # by path as well as by name


def test_stm32_budgets_fit_the_chip() -> None:
    d = load_device("stm32h7-cortex-m7")
    assert d.budgets.model_mb <= 2.0 and d.budgets.ram_mb <= 1.0 and d.cores == 1


def test_unknown_key_names_the_file(tmp_path: Path) -> None:
    data = to_dict(_profile())
    data["clock_mhz"] = 100
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"bad\.yaml.*clock_mhz"):
        load_device(path)


def test_missing_field_names_the_file(tmp_path: Path) -> None:
    data = to_dict(_profile())
    del data["cores"]
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"short\.yaml.*cores"):
        load_device(path)


def test_bad_values_name_the_file(tmp_path: Path) -> None:
    data = to_dict(_profile())
    data["kind"] = "phone"
    path = tmp_path / "kind.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"kind\.yaml.*kind"):
        load_device(path)
    data = to_dict(_profile())
    data["budgets"]["rtf"] = 0
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"kind\.yaml.*rtf"):
        load_device(path)
    data = to_dict(_profile())
    data["budgets"] = 5
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"kind\.yaml.*budgets"):
        load_device(path)


def test_unknown_name_or_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="rpi3-cortex-a53"):
        load_device("rpi4")


def test_yaml_path_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(to_dict(_profile(sources=("a", "b")))))
    assert load_device(path) == _profile(sources=("a", "b"))


def test_host_profile_is_live() -> None:
    h = host_profile()
    assert h.kind == "host" and h.name == "this-machine"
    assert h.cpu == cpu_description()
    assert h.cores >= 1 and h.clock_ghz > 0


def test_peak_macs_per_second_hand_computed() -> None:
    rpi5 = load_device("rpi5-cortex-a76")  # 2.4 GHz, 8 fp32 / 32 int8 MAC per cycle, 4 cores
    assert peak_macs_per_second(rpi5) == pytest.approx(2.4e9 * 8)
    assert peak_macs_per_second(rpi5, "fp32", threads=2) == pytest.approx(2 * 2.4e9 * 8)
    assert peak_macs_per_second(rpi5, "int8", threads=8) == pytest.approx(4 * 2.4e9 * 32)
    assert peak_macs_per_second(rpi5, "fp16") == peak_macs_per_second(rpi5, "fp32")
    with pytest.raises(ValueError, match="threads"):
        peak_macs_per_second(rpi5, threads=0)


def test_project_seconds_scales_by_peak_ratio() -> None:
    host = _profile(kind="host", clock_ghz=3.0, fp32_macs_per_cycle=16.0, cores=2)
    m7 = load_device("stm32h7-cortex-m7")  # 0.48 GHz, 1 fp32 MAC/cycle, 1 core
    # host 3e9 * 16 = 4.8e10 MAC/s, M7 4.8e8 MAC/s -> x100
    assert project_seconds(0.01, host, m7) == pytest.approx(1.0)
    # two threads: host doubles, the single-core M7 does not -> x200
    assert project_seconds(0.01, host, m7, threads=2) == pytest.approx(2.0)
    assert project_seconds(0.25, host, host) == 0.25
    h = host_profile()
    assert project_seconds(0.123, h, h, "int8", threads=4) == pytest.approx(0.123)


def test_energy_estimate_hand_computed() -> None:
    d = _profile()  # 4.6 pJ/MAC fp32, 0.3 pJ/MAC int8, 160 pJ/B
    e = energy_estimate(1e6, 1e3, d)
    assert e["compute_mj"] == pytest.approx(4.6e-3)  # 1e6 * 4.6e-12 J = 4.6e-6 J
    assert e["memory_mj"] == pytest.approx(1.6e-4)  # 1e3 * 160e-12 J = 1.6e-7 J
    assert e["mj_per_audio_second"] == pytest.approx(4.76e-3)
    assert e["label"] == "estimate" and "pJ/MAC" in e["formula"]
    assert energy_estimate(1e6, 0.0, d, "int8")["compute_mj"] == pytest.approx(3e-4)
    with pytest.raises(ValueError, match="macs_per_second"):
        energy_estimate(-1.0, 0.0, d)


@pytest.mark.parametrize("dtype", ["bf16", "int4", "FP32"])
def test_bad_dtype(dtype: str) -> None:
    d = _profile()
    with pytest.raises(ValueError, match="dtype"):
        peak_macs_per_second(d, dtype)
    with pytest.raises(ValueError, match="dtype"):
        project_seconds(1.0, d, d, dtype)
    with pytest.raises(ValueError, match="dtype"):
        energy_estimate(1.0, 1.0, d, dtype)


def test_check_budgets_limits() -> None:
    b = Budgets(latency_ms=100.0, model_mb=5.0, ram_mb=50.0, rtf=1.0)
    at = check_budgets({"latency_ms": 100.0, "model_mb": 5.0, "ram_mb": 50.0, "rtf": 1.0}, b)
    assert [at[k]["pass"] for k in ("latency_ms", "model_mb", "ram_mb")] == [True] * 3
    assert at["rtf"]["pass"] is False  # strictly below
    over = check_budgets({"latency_ms": 100.01, "model_mb": 5.001, "ram_mb": 50.1, "rtf": 1.01}, b)
    assert all(v["pass"] is False for v in over.values())
    under = check_budgets({"latency_ms": 99.9, "model_mb": 4.9, "ram_mb": 49.0, "rtf": 0.999}, b)
    assert all(v["pass"] is True for v in under.values())
    assert under["rtf"] == {"value": 0.999, "limit": 1.0, "pass": True}


def test_check_budgets_missing_figures() -> None:
    out = check_budgets({"latency_ms": 10.0, "ram_mb": None, "macs": 1e9}, Budgets())
    assert set(out) == {"latency_ms", "model_mb", "ram_mb", "rtf"}
    assert out["latency_ms"]["pass"] is True
    for key in ("model_mb", "ram_mb", "rtf"):
        assert out[key]["pass"] is None and out[key]["why"] == "not measured"
        assert out[key]["value"] is None and out[key]["limit"] > 0
