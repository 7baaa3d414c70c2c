"""Conv-TasNet: learned encoder -> TCN mask estimator -> learned decoder.

Named configs: ``convtasnet-paper`` (the paper's best non-causal model, 5.05 M params),
``convtasnet-tiny`` (edge size, <= 0.5 M params, no skip path), ``convtasnet-test`` (for tests).

References: Luo & Mesgarani, "Conv-TasNet: Surpassing Ideal Time-Frequency Magnitude Masking for
Speech Separation", IEEE/ACM TASLP 27(8), 2019.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.models.base import Separator
from edgesep.models.zoo_registry import FAMILIES, register_config
from edgesep.nn.norm import make_norm
from edgesep.nn.tcn import TCNBlock, make_act


@dataclass(frozen=True)
class ConvTasNetConfig:
    """Hyper-parameters, named as in the paper (N, L, B, H, Sc, P, X, R)."""

    n_src: int = 2
    sample_rate: int = 8000
    n_filters: int = 512  # N: encoder basis functions
    kernel_size: int = 16  # L: encoder window in samples (hop L/2)
    bn_chan: int = 128  # B: bottleneck channels
    hid_chan: int = 512  # H: channels inside a TCN block
    skip_chan: int = 128  # Sc: skip-connection channels; 0 = no skip path (mask from residual)
    conv_kernel_size: int = 3  # P: depthwise kernel size
    n_blocks: int = 8  # X: blocks per repeat, dilations 1..2^(X-1)
    n_repeats: int = 3  # R
    norm: str = "gLN"  # gLN (global) | cLN (channel-wise, causal)
    act: str = "prelu"  # prelu | relu | leaky_relu
    mask_act: str = "relu"  # relu | sigmoid
    causal: bool = False
    source_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kernel_size % 2:
            raise ValueError("kernel_size (L) must be even: the encoder hops L/2")
        if self.causal and self.norm == "gLN":
            raise ValueError("a causal Conv-TasNet needs norm='cLN' (gLN looks at the future)")
        if self.source_names and len(self.source_names) != self.n_src:
            raise ValueError("source_names must name n_src sources")


def _traceable_max(a: int, b: int) -> int:
    """``max(a, b)``; while tracing for export, sizes are 0-dim tensors and this stays in-graph."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.maximum(a, b)
    return max(a, b)


@FAMILIES.register("convtasnet")
class ConvTasNet(Separator):
    """Time-domain masking network.

    Shape: (B, C, T) -> (B, S, C, T); channels are separated independently.
    """

    family = "convtasnet"
    config_class = ConvTasNetConfig

    def __init__(self, config: ConvTasNetConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.sample_rate = c.sample_rate
        self.n_src = c.n_src
        self.source_names = c.source_names or tuple(f"s{i + 1}" for i in range(c.n_src))
        self.causal = c.causal
        self.hop = c.kernel_size // 2
        # the decoder's last frame overlaps the next L/2 samples of the future
        self.lookahead_samples = c.kernel_size - 1 if c.causal else 0
        self.encoder = nn.Conv1d(1, c.n_filters, c.kernel_size, stride=self.hop, bias=False)
        self.in_norm = make_norm(c.norm, c.n_filters)
        self.bottleneck = nn.Conv1d(c.n_filters, c.bn_chan, 1)
        self.blocks = nn.ModuleList(
            TCNBlock(
                c.bn_chan,
                c.hid_chan,
                c.skip_chan,
                c.conv_kernel_size,
                dilation=2**x,
                norm=c.norm,
                act=c.act,
                causal=c.causal,
            )
            for _ in range(c.n_repeats)
            for x in range(c.n_blocks)
        )
        mask_in = c.skip_chan if c.skip_chan > 0 else c.bn_chan
        self.mask_act_in = make_act(c.act, mask_in)
        self.mask_conv = nn.Conv1d(mask_in, c.n_src * c.n_filters, 1)
        self.decoder = nn.ConvTranspose1d(
            c.n_filters, 1, c.kernel_size, stride=self.hop, bias=False
        )

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 3:
            raise ValueError(f"expected (B, C, T), got shape {tuple(mix.shape)}")
        n_batch, n_chan, n_time = mix.shape
        x = mix.reshape(n_batch * n_chan, 1, n_time)
        # pad so the frames tile the signal exactly: T' = L + k * hop, k >= 0. That pad is L - T
        # for T <= L and (L - T) mod hop otherwise, i.e. the larger of the two; written without
        # Python's max() so an ONNX trace keeps it a function of the (dynamic) input length.
        short = self.config.kernel_size - n_time
        x = F.pad(x, (0, _traceable_max(short, short % self.hop)))
        w = self.encoder(x)  # (B*C, N, frames)
        masks = self.mask(w)  # (B*C, S, N, frames)
        y = self.decoder((masks * w.unsqueeze(1)).flatten(0, 1))  # (B*C*S, 1, T')
        y = y[..., :n_time].reshape(n_batch, n_chan, self.n_src, n_time)
        return y.transpose(1, 2)

    def mask(self, w: torch.Tensor) -> torch.Tensor:
        """Shape: (B, N, frames) -> (B, S, N, frames)."""
        h = self.bottleneck(self.in_norm(w))
        skip_sum: torch.Tensor | None = None
        for block in self.blocks:
            h, skip = block(h)
            if skip is not None:
                skip_sum = skip if skip_sum is None else skip_sum + skip
        feats = skip_sum if skip_sum is not None else h
        m = self.mask_conv(self.mask_act_in(feats))
        m = m.view(m.shape[0], self.n_src, self.config.n_filters, m.shape[-1])
        return torch.sigmoid(m) if self.config.mask_act == "sigmoid" else torch.relu(m)


PAPER = ConvTasNetConfig()
register_config("convtasnet-paper", "convtasnet", PAPER)
# Tiny: 456 k params. L=32 (4 ms at 8 kHz, hop 2 ms) halves the frame rate of L=16 and so the
# MACs and training time (1.6 s vs 3.2 s per step of 8 x 3 s on 2 CPU cores); no skip path.
TINY = ConvTasNetConfig(
    n_filters=128, kernel_size=32, bn_chan=64, hid_chan=128, skip_chan=0, n_blocks=8, n_repeats=3
)
register_config("convtasnet-tiny", "convtasnet", TINY)
register_config(
    "convtasnet-tiny-causal", "convtasnet", dataclasses.replace(TINY, norm="cLN", causal=True)
)
register_config(
    "convtasnet-test",
    "convtasnet",
    dataclasses.replace(
        PAPER, n_filters=16, bn_chan=8, hid_chan=16, skip_chan=8, n_blocks=3, n_repeats=1
    ),
)
