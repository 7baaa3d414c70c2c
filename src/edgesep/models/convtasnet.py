"""Conv-TasNet: learned encoder -> TCN mask estimator -> learned decoder.

Named configs: ``convtasnet-paper`` (the paper's best non-causal model, 5.05 M params),
``convtasnet-tiny`` (edge size, <= 0.5 M params, no skip path), ``convtasnet-test`` (for tests),
and variants of these:

- ``*-mitas``: MiTAS parameter sharing, the depthwise and pointwise convs of block x shared by
  every repeat (``share_*="stack"``); paper 5.05 M -> 1.86 M (the MiTAS paper: 5.1 M -> 1.8 M).
  :func:`sharing_report` lists every sharing mode.
- ``convtasnet-tiny-pyramid``: pyramid depthwise convs, kernels (3, 5) summed.
- ``convtasnet-tiny-edge`` (and ``-causal``): BatchNorm placed before ReLU (so it folds into the
  conv, see :func:`edgesep.models.convtasnet_fold.fold_batchnorm`) and an overlap-add decoder,
  so that every op quantizes to int8 in ONNX Runtime.

Causal configs stream: ``init_state`` / ``step`` (see :mod:`edgesep.models.streaming`) run a
core of one encoder frame per hop L/2, with one history buffer per TCN block, so each hop costs
the same however long the stream; :mod:`edgesep.models.convtasnet_stream` implements it.

References: Luo & Mesgarani, "Conv-TasNet: Surpassing Ideal Time-Frequency Magnitude Masking for
Speech Separation", IEEE/ACM TASLP 27(8), 2019; Tuan et al., "MiTAS: A Compressed Time-Domain
Audio Separation Network with Parameter Sharing", 2021; Hoang et al., "PydMobileNet", 2019.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError
from edgesep.models import convtasnet_stream
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import FAMILIES, register_config
from edgesep.nn.decoder import OverlapAddDecoder
from edgesep.nn.norm import FRAME_WISE_NORMS, NORMS, make_norm
from edgesep.nn.tcn import NORM_ORDERS, TCNBlock, make_act

# which blocks share a conv: "stack": block x of every repeat; "dilation": all blocks of a repeat
SHARE_MODES = ("none", "stack", "dilation", "all")
DECODERS = ("transposed", "ola")


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
    norm: str = "gLN"  # gLN (global) | cLN (channel-wise, causal) | BN | none
    act: str = "prelu"  # prelu | relu | leaky_relu
    mask_act: str = "relu"  # relu | sigmoid
    causal: bool = False
    source_names: tuple[str, ...] = ()
    # act_norm: conv -> act -> norm (the paper); norm_act: conv -> norm -> act (BN folds)
    norm_order: str = "act_norm"
    # pyramid depthwise conv: kernels summed at each block's dilation; () = (conv_kernel_size,)
    conv_kernel_sizes: tuple[int, ...] = ()
    share_depthwise: str = "none"  # none | stack | dilation | all (MiTAS)
    share_pointwise: str = "none"  # in_conv, res_conv and skip_conv; same modes
    decoder: str = "transposed"  # transposed (ConvTranspose1d) | ola (Conv1d + overlap-add)

    def __post_init__(self) -> None:
        if self.kernel_size % 2:
            raise InputError("kernel_size (L) must be even: the encoder hops L/2")
        if self.norm not in NORMS:
            raise InputError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.causal and self.norm not in FRAME_WISE_NORMS:
            raise InputError(
                "a causal Conv-TasNet needs norm='cLN', 'BN' or 'none' (gLN looks at the future)"
            )
        if self.source_names and len(self.source_names) != self.n_src:
            raise InputError("source_names must name n_src sources")
        for name, value, allowed in [
            ("norm_order", self.norm_order, NORM_ORDERS),
            ("share_depthwise", self.share_depthwise, SHARE_MODES),
            ("share_pointwise", self.share_pointwise, SHARE_MODES),
            ("decoder", self.decoder, DECODERS),
        ]:
            if value not in allowed:
                raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if any(k < 1 for k in (self.conv_kernel_size, *self.conv_kernel_sizes)):
            raise InputError("depthwise kernel sizes must be at least 1")


def _owner(mode: str, repeat: int, block: int, n_blocks: int) -> int:
    """Index of the block that owns the conv that block ``block`` of ``repeat`` uses."""
    owner_repeat = 0 if mode in ("stack", "all") else repeat
    owner_block = 0 if mode in ("dilation", "all") else block
    return owner_repeat * n_blocks + owner_block


def _traceable_max(a: int, b: int) -> int:
    """``max(a, b)``; while tracing for export, sizes are 0-dim tensors and this stays in-graph."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.maximum(a, b)
    return max(a, b)


@FAMILIES.register("convtasnet")
class ConvTasNet(Separator):
    """Time-domain masking network.

    Shared convs (``share_*``) are owned by the first block that uses them; the state dict
    holds them once, under that block's name. Norms and activations are never shared.

    Shape: (B, C, T) -> (B, S, C, T); channels are separated independently.
    """

    family = "convtasnet"
    config_class = ConvTasNetConfig

    def __init__(self, config: ConvTasNetConfig) -> None:
        super().__init__()
        c = config
        self._set_contract(c, hop=c.kernel_size // 2)
        # the decoder's last frame overlaps the next L/2 samples of the future
        self.lookahead_samples = c.kernel_size - 1 if c.causal else 0
        # the streaming core: one frame per hop, output one hop late (see convtasnet_stream)
        self.stream_hop = self.hop
        self.stream_core_delay = self.hop
        self.encoder = nn.Conv1d(1, c.n_filters, c.kernel_size, stride=self.hop, bias=False)
        self.in_norm = make_norm(c.norm, c.n_filters)
        self.bottleneck = nn.Conv1d(c.n_filters, c.bn_chan, 1)
        blocks: list[TCNBlock] = []
        for r in range(c.n_repeats):
            for x in range(c.n_blocks):
                pw = _owner(c.share_pointwise, r, x, c.n_blocks)
                dw = _owner(c.share_depthwise, r, x, c.n_blocks)
                blocks.append(
                    TCNBlock(
                        c.bn_chan,
                        c.hid_chan,
                        c.skip_chan,
                        c.conv_kernel_size,
                        dilation=2**x,
                        norm=c.norm,
                        act=c.act,
                        causal=c.causal,
                        kernel_sizes=c.conv_kernel_sizes,
                        norm_order=c.norm_order,
                        pointwise_from=blocks[pw] if pw < len(blocks) else None,
                        depthwise_from=blocks[dw] if dw < len(blocks) else None,
                    )
                )
        self.blocks = nn.ModuleList(blocks)
        mask_in = c.skip_chan if c.skip_chan > 0 else c.bn_chan
        self.mask_act_in = make_act(c.act, mask_in)
        self.mask_conv = nn.Conv1d(mask_in, c.n_src * c.n_filters, 1)
        self.decoder: nn.Module = (
            OverlapAddDecoder(c.n_filters, c.kernel_size)
            if c.decoder == "ola"
            else nn.ConvTranspose1d(c.n_filters, 1, c.kernel_size, stride=self.hop, bias=False)
        )

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 3:
            raise InputError(f"expected (B, C, T), got shape {tuple(mix.shape)}")
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

    def for_export(self) -> Separator:
        """BatchNorms folded into the convs when they can be (norm_act order, no sharing)."""
        c = self.config
        if c.norm != "BN" or c.norm_order != "norm_act":
            return self
        if c.share_depthwise != "none" or c.share_pointwise != "none":
            return self
        from edgesep.models.convtasnet_fold import fold_batchnorm

        return fold_batchnorm(self)

    def tcn_blocks(self) -> list[TCNBlock]:
        """``blocks``, typed."""
        return [cast(TCNBlock, b) for b in self.blocks]

    def mask(self, w: torch.Tensor) -> torch.Tensor:
        """Shape: (B, N, frames) -> (B, S, N, frames)."""
        h = self.bottleneck(self.in_norm(w))
        skip_sum: torch.Tensor | None = None
        for block in self.blocks:
            h, skip = block(h)
            if skip is not None:
                skip_sum = skip if skip_sum is None else skip_sum + skip
        return self.masks_from_features(skip_sum if skip_sum is not None else h)

    def masks_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Shape: (B, Sc or B, frames) -> (B, S, N, frames)."""
        m = self.mask_conv(self.mask_act_in(feats))
        m = m.view(m.shape[0], self.n_src, self.config.n_filters, m.shape[-1])
        return torch.sigmoid(m) if self.config.mask_act == "sigmoid" else torch.relu(m)

    # -- streaming core (causal configs), see convtasnet_stream -------------------------------
    def init_core_state(self, n_batch: int) -> list[torch.Tensor]:
        return convtasnet_stream.init_core_state(self, n_batch)

    def step_core(
        self, x: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Shape: (B, k * hop) -> (B, S, k * hop), k >= 1; B mono streams."""
        return convtasnet_stream.step_core(self, x, state)

    def core_state_names(self) -> list[str]:
        return convtasnet_stream.core_state_names(self)


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
    "convtasnet-tiny-pyramid", "convtasnet", dataclasses.replace(TINY, conv_kernel_sizes=(3, 5))
)
for _name, _base in [("convtasnet-paper-mitas", PAPER), ("convtasnet-tiny-mitas", TINY)]:
    register_config(
        _name,
        "convtasnet",
        dataclasses.replace(_base, share_depthwise="stack", share_pointwise="stack"),
    )
# every op int8-quantizable in ONNX Runtime: BN folds into the conv before it, ReLU fuses
# into the quantized conv, and the decoder is a pointwise Conv1d plus overlap-add
EDGE = dataclasses.replace(TINY, norm="BN", norm_order="norm_act", act="relu", decoder="ola")
register_config("convtasnet-tiny-edge", "convtasnet", EDGE)
register_config("convtasnet-tiny-edge-causal", "convtasnet", dataclasses.replace(EDGE, causal=True))
# for the torch-free streaming runtime: 12 blocks (2 repeats of dilations 1..32, 0.5 s receptive
# field) instead of 24. A step-graph call on a few frames costs ONNX Runtime a fixed time per
# node, so half the blocks cost 0.4x per hop at 4 hops per call (docs/RUNTIME.md)
register_config(
    "convtasnet-tiny-edge-stream",
    "convtasnet",
    dataclasses.replace(EDGE, causal=True, n_blocks=6, n_repeats=2),
)
register_config(
    "convtasnet-test",
    "convtasnet",
    dataclasses.replace(
        PAPER, n_filters=16, bn_chan=8, hid_chan=16, skip_chan=8, n_blocks=3, n_repeats=1
    ),
)


def sharing_report(
    names: tuple[str, ...] = ("convtasnet-paper", "convtasnet-tiny"),
) -> list[dict[str, str | int | float]]:
    """Parameters of every (share_depthwise, share_pointwise) pair of each named config.

    Models are built on the meta device, so this allocates nothing. Rows: ``config``,
    ``share_depthwise``, ``share_pointwise``, ``n_params`` and ``ratio`` (to unshared).
    Pointwise convs hold nearly all the weights; norms and PReLUs stay per block::

        depthwise / pointwise   paper (X=8, R=3)      tiny (X=8, R=3)
        none      / none        5,050,545  1.000      455,793  1.000
        all       / none        5,003,441  0.991      444,017  0.974
        none      / stack       1,892,529  0.375      190,577  0.418
        stack     / stack       1,859,761  0.368      182,385  0.400   (MiTAS: 5.1 M -> 1.8 M)
        stack     / dilation      872,881  0.173       99,505  0.218
        all       / all           463,793  0.092       62,769  0.138

    References: Tuan et al., "MiTAS: A Compressed Time-Domain Audio Separation Network with
    Parameter Sharing", 2021.
    """
    from edgesep.models.zoo_registry import build

    rows: list[dict[str, str | int | float]] = []
    for name in names:
        base = 0
        for pointwise in SHARE_MODES:
            for depthwise in SHARE_MODES:
                with torch.device("meta"):
                    model = build(name, share_depthwise=depthwise, share_pointwise=pointwise)
                n = model.n_params()
                base = base or n
                rows.append(
                    {
                        "config": name,
                        "share_depthwise": depthwise,
                        "share_pointwise": pointwise,
                        "n_params": n,
                        "ratio": n / base,
                    }
                )
    return rows
