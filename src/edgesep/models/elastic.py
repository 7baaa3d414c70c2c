"""An elastic (once-for-all) Conv-TasNet: one set of weights holding many subnets.

After Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment"
(ICLR 2020). The supernet is the largest Conv-TasNet of its space; a subnet chooses

- ``n_blocks``: the depth of every repeat, keeping its first blocks (dilations 1 .. 2^(d-1));
- ``hid_chan`` and ``bn_chan``: the widths inside and between the TCN blocks, keeping the
  leading channels of every weight;
- ``conv_kernel_size``: the depthwise kernel, keeping the centre taps of the largest kernel
  (a causal supernet keeps the most recent taps, so every subnet stays causal).

A subnet is an ordinary ``ConvTasNet`` of its own config. :meth:`ElasticConvTasNet.subnet`
extracts it (weights copied); :meth:`ElasticConvTasNet.forward_subnet` runs the same subnet on
the supernet's sliced weights (views, so gradients reach the supernet) through
``torch.func.functional_call``. The two share one slicing function, and a test holds them equal.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

import torch

from edgesep.config import to_dict
from edgesep.errors import InputError
from edgesep.models.base import Separator
from edgesep.models.convtasnet import EDGE, TINY, ConvTasNet, ConvTasNetConfig
from edgesep.models.zoo_registry import FAMILIES, register_config

ELASTIC_FIELDS = ("n_blocks", "hid_chan", "bn_chan", "conv_kernel_size")


@dataclass(frozen=True)
class ElasticConvTasNetConfig:
    """The largest config, and the values each elastic field may take (each list holds the
    largest config's own value as its maximum)."""

    largest: ConvTasNetConfig = field(default_factory=ConvTasNetConfig)
    n_blocks: tuple[int, ...] = ()
    hid_chan: tuple[int, ...] = ()
    bn_chan: tuple[int, ...] = ()
    conv_kernel_size: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        big = self.largest
        if big.skip_chan or big.conv_kernel_sizes or big.share_depthwise != "none":
            raise InputError("elastic widths need skip_chan=0, one kernel and no sharing")
        if big.share_pointwise != "none":
            raise InputError("elastic widths need share_pointwise='none'")
        for name in ELASTIC_FIELDS:
            values = getattr(self, name)
            if values and max(values) != getattr(big, name):
                raise InputError(f"{name}: the largest choice must be the largest config's value")
            if any(v < 1 for v in values):
                raise InputError(f"{name}: choices must be >= 1")
        if any(k % 2 == 0 for k in self.conv_kernel_size):
            raise InputError("conv_kernel_size choices must be odd (centre taps)")

    # the contract attributes a Separator reads from its config
    @property
    def sample_rate(self) -> int:
        return self.largest.sample_rate

    @property
    def n_src(self) -> int:
        return self.largest.n_src

    @property
    def source_names(self) -> tuple[str, ...]:
        return self.largest.source_names

    @property
    def causal(self) -> bool:
        return self.largest.causal

    def choices(self, name: str) -> tuple[int, ...]:
        return getattr(self, name) or (getattr(self.largest, name),)


Choice = dict[str, int]


@FAMILIES.register("convtasnet-elastic")
class ElasticConvTasNet(Separator):
    """The supernet; its own forward is the largest subnet.

    Shape: (B, C, T) -> (B, S, C, T).
    """

    family = "convtasnet-elastic"
    config_class = ElasticConvTasNetConfig

    def __init__(self, config: ElasticConvTasNetConfig) -> None:
        super().__init__()
        self.net = ConvTasNet(config.largest)
        self._set_contract(config, hop=self.net.hop)
        self.lookahead_samples = self.net.lookahead_samples
        self._templates: dict[tuple[int, ...], ConvTasNet] = {}

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return self.net(mix)

    # -- choices -----------------------------------------------------------------------------
    def all_choices(self) -> list[Choice]:
        c = self.config
        grid = itertools.product(*(c.choices(n) for n in ELASTIC_FIELDS))
        return [dict(zip(ELASTIC_FIELDS, v, strict=True)) for v in grid]

    def largest_choice(self) -> Choice:
        return {n: max(self.config.choices(n)) for n in ELASTIC_FIELDS}

    def smallest_choice(self) -> Choice:
        return {n: min(self.config.choices(n)) for n in ELASTIC_FIELDS}

    def random_choice(self, rng: random.Random) -> Choice:
        return {n: rng.choice(self.config.choices(n)) for n in ELASTIC_FIELDS}

    def subnet_config(self, choice: Choice) -> ConvTasNetConfig:
        unknown = set(choice) - set(ELASTIC_FIELDS)
        if unknown:
            raise InputError(f"unknown elastic fields {sorted(unknown)}")
        for name, value in choice.items():
            if value not in self.config.choices(name):
                raise InputError(f"{name}={value} is not one of {self.config.choices(name)}")
        return dataclasses.replace(self.config.largest, **choice)

    # -- slicing -----------------------------------------------------------------------------
    def _template(self, choice: Choice) -> ConvTasNet:
        key = tuple(choice.get(n, max(self.config.choices(n))) for n in ELASTIC_FIELDS)
        if key not in self._templates:
            # built on the meta device: shapes only, never computed with
            with torch.device("meta"):
                self._templates[key] = ConvTasNet(self.subnet_config(choice))
        return self._templates[key]

    def sliced_weights(self, choice: Choice) -> dict[str, torch.Tensor]:
        """The subnet's state dict as slices (views) of the supernet's tensors."""
        big = self.config.largest
        n_blocks = choice.get("n_blocks", big.n_blocks)
        supernet: dict[str, torch.Tensor] = dict(self.net.named_parameters())
        supernet.update(dict(self.net.named_buffers()))
        out = {}
        for key, target in self._template(choice).state_dict().items():
            source_key = key
            if key.startswith("blocks."):
                _, index, rest = key.split(".", 2)
                r, x = divmod(int(index), n_blocks)
                source_key = f"blocks.{r * big.n_blocks + x}.{rest}"
            kernel = key.endswith("dconv.weight")
            out[key] = _slice(
                supernet[source_key], tuple(target.shape), kernel, recent=kernel and big.causal
            )
        return out

    def forward_subnet(self, mix: torch.Tensor, choice: Choice) -> torch.Tensor:
        """The subnet ``choice`` on the supernet's own weights (differentiable)."""
        template = self._template(choice)
        weights = self.sliced_weights(choice)
        template.train(self.training)
        return torch.func.functional_call(template, weights, (mix,), strict=True)

    def subnet(self, choice: Choice) -> ConvTasNet:
        """An independent ``ConvTasNet`` of the subnet's config with the sliced weights copied."""
        model = ConvTasNet(self.subnet_config(choice))
        with torch.no_grad():
            model.load_state_dict(
                {k: v.detach().clone() for k, v in self.sliced_weights(choice).items()}
            )
        return model.train(self.training)


def _slice(
    tensor: torch.Tensor, shape: tuple[int, ...], kernel_last: bool, recent: bool = False
) -> torch.Tensor:
    """Leading entries along every dim; the last dim of a depthwise kernel keeps its centre, or
    with ``recent`` (a causal kernel, whose last tap weighs the current frame) its last taps."""
    if tensor.dim() != len(shape):
        raise InputError(f"cannot slice {tuple(tensor.shape)} to {shape}")
    index: list[slice] = []
    for dim, (have, want) in enumerate(zip(tensor.shape, shape, strict=True)):
        if want > have:
            raise InputError(f"cannot slice {tuple(tensor.shape)} to {shape}")
        if kernel_last and dim == tensor.dim() - 1:
            start = have - want if recent else (have - want) // 2
            index.append(slice(start, start + want))
        else:
            index.append(slice(0, want))
    return tensor[tuple(index)]


def elastic_config(
    largest: ConvTasNetConfig, **choices: tuple[int, ...]
) -> ElasticConvTasNetConfig:
    return ElasticConvTasNetConfig(largest=largest, **choices)


# around convtasnet-tiny: depths 2-8 per repeat, H 64-128, B 32-64, kernels 3 or 5 (the
# largest, 128/64/5 at 8 blocks x 3 repeats, is convtasnet-tiny with 5-tap depthwise convs)
_TINY_LARGEST = dataclasses.replace(TINY, conv_kernel_size=5)
register_config(
    "convtasnet-elastic-tiny",
    "convtasnet-elastic",
    elastic_config(
        _TINY_LARGEST,
        n_blocks=(2, 4, 6, 8),
        hid_chan=(64, 96, 128),
        bn_chan=(32, 48, 64),
        conv_kernel_size=(3, 5),
    ),
)
# around the bundled streaming model (convtasnet-tiny-edge-stream, the largest subnet): causal,
# depths 2-6 per repeat, H 64-128, B 32-64; its subnets' step graphs share one delay, so
# edgesep.runtime.AdaptiveStreamingSession can switch between them mid-stream
register_config(
    "convtasnet-elastic-stream",
    "convtasnet-elastic",
    elastic_config(
        dataclasses.replace(EDGE, causal=True, n_blocks=6, n_repeats=2),
        n_blocks=(2, 4, 6),
        hid_chan=(64, 96, 128),
        bn_chan=(32, 48, 64),
    ),
)
register_config(
    "convtasnet-elastic-test",
    "convtasnet-elastic",
    elastic_config(
        ConvTasNetConfig(
            n_filters=16, kernel_size=16, bn_chan=8, hid_chan=16, skip_chan=0, n_blocks=3,
            n_repeats=2, conv_kernel_size=5,
        ),
        n_blocks=(1, 2, 3),
        hid_chan=(8, 16),
        bn_chan=(4, 8),
        conv_kernel_size=(3, 5),
    ),
)  # fmt: skip


def describe(model: ElasticConvTasNet) -> dict[str, Any]:
    """The supernet's choices and the size of its space."""
    return {
        "largest": to_dict(model.config.largest),
        "choices": {n: list(model.config.choices(n)) for n in ELASTIC_FIELDS},
        "n_subnets": len(model.all_choices()),
    }
