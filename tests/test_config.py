"""Configs: dict/YAML round trips, overrides, and clear errors for bad options."""

from __future__ import annotations

import pytest

from edgesep.config import apply_overrides, from_dict, load_file, to_dict
from edgesep.data.dynamic import DynamicMixConfig, PoolConfig
from edgesep.models.convtasnet import ConvTasNetConfig
from edgesep.train.loop import TrainConfig


def test_nested_round_trip() -> None:
    cfg = TrainConfig(data=DynamicMixConfig(pools=(PoolConfig("a"), PoolConfig("b", weight=2.0))))
    again = from_dict(TrainConfig, to_dict(cfg))
    assert again == cfg
    assert isinstance(again.data.pools[1], PoolConfig)
    assert again.data.level_range_db == (-5.0, 5.0)


def test_overrides_and_yaml_number_quirk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.yaml"
    path.write_text("model: convtasnet-test\nlr: 0.001\ndata:\n  segment_seconds: 2\n")
    data = apply_overrides(load_file(path), ["lr=5e-4", "data.segment_seconds=1.5", "seed=3"])
    cfg = from_dict(TrainConfig, data)
    # YAML 1.1 parses 5e-4 as a string; the config must still get a float
    assert cfg.lr == pytest.approx(5e-4) and isinstance(cfg.lr, float)
    assert cfg.data.segment_seconds == 1.5 and cfg.seed == 3


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"n_filters": "many"}, "ConvTasNetConfig.n_filters: expected int"),
        ({"causal": "yes"}, "ConvTasNetConfig.causal: expected bool"),
        ({"n_filtres": 3}, "unknown option"),
    ],
)
def test_bad_options_fail_clearly(data: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        from_dict(ConvTasNetConfig, data)


def test_bad_override_syntax() -> None:
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["lr"])
