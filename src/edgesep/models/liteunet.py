"""Lite U-Net: a spectrogram-mask U-Net sized for edge devices.

STFT -> compressed magnitude -> U-Net of depthwise-separable conv blocks that downsamples along
frequency only -> one real mask per source and bin -> masked mixture spectrum -> iSTFT.

Time is never downsampled: every level runs at the frame rate, so each time conv is causal or
centred on its own, and a causal model streams one hop at a time with a small ring buffer per
conv. Frequency sizes through the levels are ``ceil(size / freq_stride)``: a level pads its top
bins with zeros up to a multiple of the stride before downsampling, and the decoder crops the
upsampled map back to the skip's size (static sizes, so the ONNX graph has plain Pad/Slice ops).

Norm: BatchNorm by default. At inference it is a per-channel affine map, so it looks at one
frame only (causal, nothing to carry when streaming) and folds into the pointwise conv before
it: zero cost and int8-friendly on a device. Its price is that training mode (batch statistics)
differs from eval. ``fLN`` (layer norm over channels and frequency of each frame) is also causal,
identical in train and eval and independent of batch size, but costs two reductions per block
at inference and does not fold. Norms over time (instance/group norm) would see the future.

Named configs: ``liteunet-8k`` (8 kHz speech, 2 sources), ``liteunet-8k-causal`` (the same,
streamable), ``liteunet-music`` (44.1 kHz, vocals/drums/bass/other, any number of channels
separated independently), ``liteunet-music-16k`` (the same at 16 kHz), ``liteunet-test``
(tiny, for tests).

References: Ronneberger et al., "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015; Jansson et al., "Singing Voice Separation with Deep U-Net
Convolutional Networks", ISMIR 2017; Howard et al., "MobileNets", arXiv:1704.04861, 2017.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesep.errors import InputError
from edgesep.models.base import Separator
from edgesep.models.zoo_registry import FAMILIES, register_config
from edgesep.nn.separable import NORMS_2D, SeparableConv2dBlock
from edgesep.nn.stft import ISTFT, STFT

ACTS = ("relu", "prelu", "leaky_relu")
MASK_ACTS = ("sigmoid", "relu")


@dataclass(frozen=True)
class LiteUNetConfig:
    """Hyper-parameters of a Lite U-Net.

    Channels at level ``l`` are ``n_filters * channel_growth**l`` (level ``n_levels`` is the
    bottleneck); ``n_bottleneck`` residual blocks there have time dilations 1, 2, 4, ...
    """

    n_src: int = 2
    sample_rate: int = 8000
    n_fft: int = 256
    hop: int = 64
    n_filters: int = 16
    channel_growth: int = 2
    n_levels: int = 3
    freq_stride: int = 4
    n_bottleneck: int = 4
    kernel_t: int = 3
    norm: str = "BN"  # BN (per-channel affine at inference) | fLN (per-frame layer norm) | none
    act: str = "relu"
    mask_act: str = "sigmoid"
    causal: bool = False
    source_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        positive = ("n_src", "sample_rate", "n_fft", "hop", "n_filters", "channel_growth")
        for name in (*positive, "n_levels", "kernel_t"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_bottleneck < 0:
            raise InputError(f"n_bottleneck must be >= 0, got {self.n_bottleneck}")
        if self.n_fft % self.hop or self.n_fft < 2 * self.hop:
            raise InputError(
                f"n_fft ({self.n_fft}) must be a multiple of hop ({self.hop}) and at least "
                "twice it (the iSTFT's window overlap)"
            )
        if self.freq_stride < 2:
            raise InputError(f"freq_stride must be at least 2, got {self.freq_stride}")
        if self.norm not in NORMS_2D:
            raise InputError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS_2D)}")
        if self.act not in ACTS:
            raise InputError(f"unknown act {self.act!r}; choose one of {', '.join(ACTS)}")
        if self.mask_act not in MASK_ACTS:
            raise InputError(f"unknown mask_act {self.mask_act!r}; choose sigmoid or relu")
        if self.source_names and len(self.source_names) != self.n_src:
            raise InputError("source_names must name n_src sources")


class UNetMasker(nn.Module):
    """Compressed magnitude -> one mask per source and bin.

    ``forward(feat)`` runs offline; ``forward(feat, caches)`` runs causally on new frames with
    one ring buffer per block (order: ``block_names()``) and returns the updated buffers.

    Shape: (B, 1, F, N) -> (B, S, F, N)
    """

    def __init__(self, c: LiteUNetConfig) -> None:
        super().__init__()
        self.config = c
        n_freq = c.n_fft // 2 + 1
        chans = [c.n_filters * c.channel_growth**lvl for lvl in range(c.n_levels + 1)]
        sizes = [n_freq]
        for _ in range(c.n_levels):
            sizes.append(-(-sizes[-1] // c.freq_stride))
        self.chans, self.sizes = chans, sizes

        def block(c_in: int, c_out: int, dilation: int = 1, mult: int = 1) -> nn.Module:
            return SeparableConv2dBlock(
                c_in,
                c_out,
                kernel_t=c.kernel_t,
                dilation_t=dilation,
                causal=c.causal,
                norm=c.norm,
                act=c.act,
                residual=c_in == c_out,
                depth_mult=mult,
            )

        s = c.freq_stride
        # the 1-channel input gets n_filters depthwise filters, else the first pointwise conv
        # would only see one filtered copy of the spectrogram
        self.enc = nn.ModuleList(
            block(1, chans[0], mult=chans[0]) if lvl == 0 else block(chans[lvl], chans[lvl])
            for lvl in range(c.n_levels)
        )
        # non-overlapping strided convs along frequency: exact sizes, learned pooling
        self.down = nn.ModuleList(
            nn.Conv2d(chans[lvl], chans[lvl + 1], (s, 1), stride=(s, 1))
            for lvl in range(c.n_levels)
        )
        self.mid = nn.ModuleList(
            block(chans[-1], chans[-1], dilation=2**i) for i in range(c.n_bottleneck)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(chans[lvl + 1], chans[lvl], (s, 1), stride=(s, 1))
            for lvl in range(c.n_levels)
        )
        self.dec = nn.ModuleList(block(chans[lvl], chans[lvl]) for lvl in range(c.n_levels))
        self.head = nn.Conv2d(chans[0], c.n_src, 1)

    def block_names(self) -> list[str]:
        """The time-conv blocks in the order their ring buffers are kept."""
        n_lvl = self.config.n_levels
        return (
            [f"enc{i}" for i in range(n_lvl)]
            + [f"mid{i}" for i in range(len(self.mid))]
            + [f"dec{i}" for i in reversed(range(n_lvl))]
        )

    def init_caches(self, n_batch: int, dtype: torch.dtype) -> list[torch.Tensor]:
        """Zero ring buffers: (n_batch, block input channels, F at its level, context)."""
        blocks = [*self.enc, *self.mid, *reversed(self.dec)]
        levels = [*range(len(self.enc)), *([len(self.enc)] * len(self.mid))]
        levels += list(reversed(range(len(self.dec))))
        return [
            torch.zeros(n_batch, b.in_chan, self.sizes[lvl], b.context, dtype=dtype)
            for b, lvl in zip(blocks, levels, strict=True)
        ]

    def forward(
        self, feat: torch.Tensor, caches: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Masks, and the updated ring buffers (an empty list when run offline).

        Shape: (B, 1, F, N) -> (B, S, F, N)
        """
        new_caches: list[torch.Tensor] = []

        def run(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
            assert isinstance(block, SeparableConv2dBlock)
            if caches is None:
                out: torch.Tensor = block(x)
                return out
            out, cache = block.step(x, caches[len(new_caches)])
            new_caches.append(cache)
            return out

        s = self.config.freq_stride
        h, skips = feat, []
        for lvl, (enc, down) in enumerate(zip(self.enc, self.down, strict=True)):
            h = run(enc, h)
            skips.append(h)
            extra = self.sizes[lvl + 1] * s - self.sizes[lvl]
            h = down(F.pad(h, (0, 0, 0, extra)) if extra else h)
        for blk in self.mid:
            h = run(blk, h)
        for lvl in reversed(range(len(self.dec))):
            h = self.up[lvl](h)[:, :, : self.sizes[lvl]] + skips[lvl]
            h = run(self.dec[lvl], h)
        m = self.head(h)
        masks = torch.sigmoid(m) if self.config.mask_act == "sigmoid" else torch.relu(m)
        return masks, new_caches


@FAMILIES.register("liteunet")
class LiteUNet(Separator):
    """Spectrogram-mask U-Net; channels are separated independently.

    Framing: the input is padded by ``n_fft - hop`` zeros on the left (``STFT.left_pad``: every
    output sample is then in the iSTFT's steady state) and on the right by as many again plus
    up to ``hop - 1`` to whole frames, so that every frame overlapping the signal is computed:
    the last samples are reconstructed as fully as the first (and as a stream flushed with
    zeros would give them). Output is cropped to the input's span.

    Latency of the causal config: the sqrt-Hann window is exactly zero at its first sample, so
    output sample ``t`` needs input up to ``t + n_fft - 2`` (at one sample past a frame start);
    ``lookahead_samples = n_fft - 2``, and the streaming core returns each sample as soon as the
    frames it needs are in, ``n_fft - hop - 1`` samples late.

    Shape: (B, C, T) -> (B, S, C, T)
    """

    family = "liteunet"
    config_class = LiteUNetConfig

    def __init__(self, config: LiteUNetConfig) -> None:
        super().__init__()
        c = config
        self._set_contract(c, hop=c.hop)
        self.stft = STFT(c.n_fft, c.hop)
        self.istft = ISTFT(c.n_fft, c.hop)
        self.masker = UNetMasker(c)
        self.left_pad = self.stft.left_pad
        self.lookahead_samples = c.n_fft - 2 if c.causal else 0
        self.stream_hop = c.hop
        self.stream_core_delay = self.left_pad - 1

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Separate each channel on its own (channels are folded into the batch).

        Shape: (B, C, T) -> (B, S, C, T), any T >= 1
        """
        if mix.dim() != 3:
            raise InputError(f"expected (B, C, T), got shape {tuple(mix.shape)}")
        n_batch, n_chan, n_time = mix.shape
        x = mix.reshape(n_batch * n_chan, n_time)
        # whole frames: (hop - T % hop) % hop is written with tensor-friendly ops so that an
        # ONNX trace keeps it a function of the (dynamic) input length
        right = self.left_pad + (self.hop - n_time % self.hop) % self.hop
        y, _ = self._separate(F.pad(x, (self.left_pad, right)), None)
        y = y[..., self.left_pad : self.left_pad + n_time]
        return y.reshape(n_batch, n_chan, self.n_src, n_time).transpose(1, 2)

    def _separate(
        self, x: torch.Tensor, caches: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Mask the spectrum of padded mono signals and resynthesise (no cropping).

        Shape: (B, n_fft + (N - 1) * hop) -> (B, S, n_fft + (N - 1) * hop)
        """
        real, imag = self.stft(x)  # (B, F, N)
        # |X|^0.3 (compressed magnitude) as one Pow; the epsilon keeps its gradient finite at 0
        feat = (real.square() + imag.square() + 1e-8).pow(0.15).unsqueeze(1)
        masks, caches = self.masker(feat, caches)  # (B, S, F, N)
        real = (masks * real.unsqueeze(1)).flatten(0, 1)
        imag = (masks * imag.unsqueeze(1)).flatten(0, 1)
        y = self.istft(real, imag)
        return y.reshape(x.shape[0], self.n_src, y.shape[-1]), caches

    # -- streaming core (causal configs) ------------------------------------------------------
    def init_core_state(self, n_batch: int) -> list[torch.Tensor]:
        """Input tail, one ring buffer per time conv, iSTFT overlap-add tail; all zeros."""
        if not self.causal:
            raise InputError("LiteUNet: streaming needs a causal config (causal=True)")
        dtype = self.stft.basis.dtype
        return [
            torch.zeros(n_batch, self.left_pad, dtype=dtype),
            *self.masker.init_caches(n_batch, dtype),
            torch.zeros(n_batch, self.n_src, self.left_pad - 1, dtype=dtype),
        ]

    def core_state_names(self) -> list[str]:
        return ["input_tail", *self.masker.block_names(), "ola_tail"]

    def step_core(
        self, x: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """k new hops in, k hops out, ``stream_core_delay`` samples late; state is not mutated.

        The input tail plus k hops make exactly k frames. Their overlap-added synthesis, plus the
        previous tail, is final up to and including the first sample of the next frame (where
        the next frame's window is exactly zero), so the output runs one sample past the hop
        grid and the kept overlap-add tail is ``n_fft - hop - 1`` samples.

        Shape: (B, k * hop) -> (B, S, k * hop)
        """
        n_new = x.shape[-1]
        buf = torch.cat([state[0], x], dim=-1)
        y, caches = self._separate(buf, list(state[1:-1]))  # (B, S, n_fft + (k - 1) * hop)
        tail = state[-1]
        acc = y + F.pad(tail, (1, y.shape[-1] - 1 - tail.shape[-1]))
        out = acc[..., 1 : n_new + 1]
        return out, [buf[:, n_new:], *caches, acc[..., n_new + 1 :]]


_SPEECH = LiteUNetConfig()
register_config("liteunet-8k", "liteunet", _SPEECH)
register_config("liteunet-8k-causal", "liteunet", dataclasses.replace(_SPEECH, causal=True))
register_config(
    "liteunet-music",
    "liteunet",
    LiteUNetConfig(
        n_src=4,
        sample_rate=44100,
        n_fft=2048,
        hop=512,
        n_filters=16,
        n_levels=3,
        freq_stride=4,
        source_names=("vocals", "drums", "bass", "other"),
    ),
)
# 16 kHz stereo music: 64 ms frames, 16 ms hop (see bsrnn-music-16k)
register_config(
    "liteunet-music-16k",
    "liteunet",
    LiteUNetConfig(
        n_src=4,
        sample_rate=16000,
        n_fft=1024,
        hop=256,
        n_filters=16,
        n_levels=3,
        freq_stride=4,
        source_names=("vocals", "drums", "bass", "other"),
    ),
)
register_config(
    "liteunet-test",
    "liteunet",
    LiteUNetConfig(n_fft=64, hop=16, n_filters=4, n_levels=2, freq_stride=2, n_bottleneck=1),
)
