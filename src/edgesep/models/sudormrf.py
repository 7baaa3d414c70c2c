"""SuDoRM-RF: learned encoder -> stacked U-ConvBlocks -> per-source masks -> learned decoder.

Named configs:

- ``sudormrf-small``: the paper's 0.25x model (R=4 U-ConvBlocks, N=512 bases of 21 samples hop
  10, B=128, H=512, depth 4): 825 k params (the paper: 13.4 dB SI-SNRi on WSJ0-2mix at ~0.8 M);
- ``sudormrf-tiny``: half the encoder bases and three quarters of the hidden channels, 564 k;
- ``sudormrf-test``: for tests.

Most of the work runs on sequences downsampled 2-16x, so a second of 8 kHz audio costs fewer
MACs than Conv-TasNet's dilated TCN of the same size; its gLNs see the whole signal, so it is not
causal (a causal variant needs cumulative norms and causal resampling: not here yet).

References: Tzinis, Wang & Smaragdis, "Sudo rm -rf: Efficient Networks for Universal Audio Source
Separation", MLSP 2020; Tzinis et al., "Compute and Memory Efficient Universal Sound Source
Separation", J. Signal Process. Syst. 2022.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from edgesep.errors import InputError
from edgesep.models.masking import MaskingSeparator
from edgesep.models.zoo_registry import FAMILIES, register_config
from edgesep.nn.uconv import UConvBlock


@dataclass(frozen=True)
class SuDoRMRFConfig:
    n_src: int = 2
    sample_rate: int = 8000
    n_filters: int = 512  # N: encoder bases
    kernel_size: int = 21  # encoder window in samples
    stride: int = 10  # encoder hop
    bn_chan: int = 128  # B
    hid_chan: int = 512  # H: channels inside a U-ConvBlock
    n_blocks: int = 4  # R: U-ConvBlocks
    depth: int = 4  # resolutions per U-ConvBlock (downsampled 2^(depth-1)x at the coarsest)
    block_kernel_size: int = 5
    causal: bool = False
    source_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.causal:
            raise InputError("SuDoRM-RF has no causal variant here yet (its gLNs see the future)")
        if not 0 < self.stride <= self.kernel_size:
            raise InputError("stride must be in 1..kernel_size")
        if self.source_names and len(self.source_names) != self.n_src:
            raise InputError("source_names must name n_src sources")


@FAMILIES.register("sudormrf")
class SuDoRMRF(MaskingSeparator):
    """Mask-based time-domain separator with U-ConvBlocks.

    Shape: (B, C, T) -> (B, S, C, T); channels are separated independently.
    """

    family = "sudormrf"
    config_class = SuDoRMRFConfig

    def __init__(self, config: SuDoRMRFConfig) -> None:
        super().__init__()
        c = config
        self._set_contract(c, hop=c.stride)
        self.lookahead_samples = 0
        self._build(
            c.n_filters,
            c.kernel_size,
            c.stride,
            c.bn_chan,
            lambda: nn.Sequential(
                *(
                    UConvBlock(c.bn_chan, c.hid_chan, c.depth, c.block_kernel_size)
                    for _ in range(c.n_blocks)
                )
            ),
        )


SMALL = SuDoRMRFConfig()
register_config("sudormrf-small", "sudormrf", SMALL)
register_config(
    "sudormrf-tiny", "sudormrf", dataclasses.replace(SMALL, n_filters=256, hid_chan=384)
)
register_config(
    "sudormrf-test",
    "sudormrf",
    dataclasses.replace(SMALL, n_filters=16, bn_chan=8, hid_chan=16, n_blocks=2, depth=3),
)
