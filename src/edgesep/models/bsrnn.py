"""Band-Split RNN: STFT -> band split -> interleaved time/band RNNs -> per-band complex masks.

Named configs: ``bsrnn-8k`` and ``bsrnn-8k-causal`` (8 kHz speech, 2 speakers), ``bsrnn-16k``
(16 kHz speech), ``bsrnn-music`` (44.1 kHz; vocals, drums, bass, other), ``bsrnn-music-16k``
(the same stems at 16 kHz) and ``bsrnn-test``. All
are edge-sized: far smaller than the paper's music models (one per source, D=128, 12 blocks).

Framing (see :mod:`edgesep.nn.stft`): the input is padded by n_fft - hop on the left, and on the
right to a whole hop plus n_fft - hop, so every output sample, the last ones too, lies in the
iSTFT's steady state, and the causal model can run hop by hop. Channels are folded into the
batch and separated independently. The
periodic sqrt-Hann window is exactly zero at a frame's first sample, so a frame adds nothing to
the output sample where it starts: the output up to and including the next frame's first sample
is final once a frame is in. That makes the tight lookahead n_fft - 2 (input at t + n_fft - 2
reaches the output at t when t = 1 mod hop), and the streaming core n_fft - hop - 1 samples late.

References: Luo & Yu, "Music Source Separation with Band-Split RNN", IEEE/ACM TASLP 31, 2023
(arXiv 2209.15174).
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
from edgesep.nn.bandsplit import (
    BandMaskEstimator,
    BandSplit,
    apply_complex_mask,
    band_widths_from_hz,
    check_band_widths,
)
from edgesep.nn.stft import ISTFT, STFT

# (upper edge Hz, band width Hz): 125 Hz bands up to 1 kHz, then 250, 500 and 1000 Hz
SPEECH_BANDS: tuple[tuple[float, float], ...] = (
    (1000.0, 125.0),
    (2000.0, 250.0),
    (4000.0, 500.0),
    (8000.0, 1000.0),
)
# the paper's scheme (its Table I, "v7") made coarser for the edge: 24 bands instead of 41
MUSIC_BANDS: tuple[tuple[float, float], ...] = (
    (500.0, 100.0),
    (2000.0, 250.0),
    (4000.0, 500.0),
    (8000.0, 1000.0),
    (16000.0, 2000.0),
)


@dataclass(frozen=True)
class BSRNNConfig:
    """Hyper-parameters; D, H and K as in the paper (feature size, RNN size, blocks)."""

    n_src: int = 2
    sample_rate: int = 8000
    n_fft: int = 256
    hop: int = 128
    band_hz: tuple[tuple[float, float], ...] = SPEECH_BANDS  # see band_widths_from_hz
    band_widths: tuple[int, ...] = ()  # explicit widths in bins; when given, band_hz is unused
    feature_dim: int = 48  # D
    hidden: int = 48  # H: RNN units per direction
    n_blocks: int = 4  # K: each a time RNN then a band RNN
    rnn_type: str = "gru"  # gru | lstm
    mask_hidden: int = 64  # hidden size of each band's mask MLP (the paper uses 4 D)
    causal: bool = False  # unidirectional time RNNs; the band RNNs stay bidirectional
    source_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hop < 1 or self.n_fft % self.hop or self.n_fft < 2 * self.hop:
            raise InputError(
                f"hop ({self.hop}) must divide n_fft ({self.n_fft}) at least twice: the "
                f"sqrt-Hann window needs overlapping frames"
            )
        if self.rnn_type not in ("gru", "lstm"):
            raise InputError(f"unknown rnn_type {self.rnn_type!r}; choose gru or lstm")
        if self.source_names and len(self.source_names) != self.n_src:
            raise InputError("source_names must name n_src sources")
        self.widths()  # a band layout that does not tile the spectrum fails here, not later

    def widths(self) -> tuple[int, ...]:
        """Band widths in bins, checked to tile the n_fft // 2 + 1 bins."""
        n_freq = self.n_fft // 2 + 1
        if self.band_widths:
            return check_band_widths(self.band_widths, n_freq)
        return band_widths_from_hz(self.sample_rate, self.n_fft, self.band_hz)


class ResidualRNN(nn.Module):
    """LayerNorm -> GRU/LSTM -> Linear back to D, plus the input (the paper's residual RNN).

    The norm is per step, so a unidirectional one is causal and can carry its state.

    Shape: (B, L, D) -> (B, L, D); state [h] (GRU) or [h, c] (LSTM), each (1, B, H).
    """

    def __init__(self, dim: int, hidden: int, rnn_type: str, bidirectional: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        rnn_class = nn.LSTM if rnn_type == "lstm" else nn.GRU
        self.rnn = rnn_class(dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.proj = nn.Linear(hidden * (2 if bidirectional else 1), dim)
        self.is_lstm = rnn_type == "lstm"

    def forward(
        self, x: torch.Tensor, state: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.norm(x)
        if self.is_lstm:
            y, (h_n, c_n) = self.rnn(h, None if state is None else (state[0], state[1]))
            new_state = [h_n, c_n]
        else:
            y, h_n = self.rnn(h, None if state is None else state[0])
            new_state = [h_n]
        return x + self.proj(y), new_state


class DualPathBlock(nn.Module):
    """A time RNN over the frames of each band, then a band RNN over the bands of each frame.

    Shape: (B, K, N, D) -> (B, K, N, D); state: the time RNN's (see :class:`ResidualRNN`).
    """

    def __init__(self, dim: int, hidden: int, rnn_type: str, causal: bool) -> None:
        super().__init__()
        self.time_rnn = ResidualRNN(dim, hidden, rnn_type, bidirectional=not causal)
        # bands are all known within a frame, so looking both ways across them stays causal
        self.band_rnn = ResidualRNN(dim, hidden, rnn_type, bidirectional=True)

    def forward(
        self, z: torch.Tensor, state: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        n_batch, n_band, n_frame, dim = z.shape
        z, new_state = self.time_rnn(z.reshape(n_batch * n_band, n_frame, dim), state)
        z = z.reshape(n_batch, n_band, n_frame, dim).transpose(1, 2)
        z, _ = self.band_rnn(z.reshape(n_batch * n_frame, n_band, dim))
        return z.reshape(n_batch, n_frame, n_band, dim).transpose(1, 2), new_state


@FAMILIES.register("bsrnn")
class BSRNN(Separator):
    """Complex-masking separator in the STFT domain; channels are separated independently.

    Shape: (B, C, T) -> (B, S, C, T), any T >= 1.
    """

    family = "bsrnn"
    config_class = BSRNNConfig

    def __init__(self, config: BSRNNConfig) -> None:
        super().__init__()
        c = config
        self._set_contract(c, hop=c.hop)
        self.lookahead_samples = c.n_fft - 2 if c.causal else 0
        self.stream_hop = c.hop
        self.stream_core_delay = c.n_fft - c.hop - 1
        self.widths = c.widths()
        self.stft = STFT(c.n_fft, c.hop)
        self.istft = ISTFT(c.n_fft, c.hop)
        self.band_split = BandSplit(self.widths, c.feature_dim)
        self.blocks = nn.ModuleList(
            DualPathBlock(c.feature_dim, c.hidden, c.rnn_type, c.causal) for _ in range(c.n_blocks)
        )
        self.mask = BandMaskEstimator(self.widths, c.feature_dim, c.mask_hidden, c.n_src)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 3:
            raise InputError(f"expected (B, C, T), got shape {tuple(mix.shape)}")
        n_batch, n_chan, n_time = mix.shape
        left = self.stft.left_pad
        # on the right: up to a whole hop, then n_fft - hop more so that every frame reaching the
        # last sample exists and the end, too, is in the iSTFT's steady state. (-T) % hop is an
        # op on the size, so a trace keeps it a function of the dynamic length.
        right = (-n_time) % self.hop + left
        x = F.pad(mix.reshape(n_batch * n_chan, n_time), (left, right))
        spec_re, spec_im = self.stft(x)
        z = self.band_split(spec_re, spec_im)
        for block in self.blocks:
            z, _ = block(z)
        y = self.synthesise(z, spec_re, spec_im)[..., left : left + n_time]
        return y.reshape(n_batch, n_chan, self.n_src, n_time).transpose(1, 2)

    def synthesise(
        self, z: torch.Tensor, spec_re: torch.Tensor, spec_im: torch.Tensor
    ) -> torch.Tensor:
        """Masks from features, applied to the mixture spectrum, back to waveforms.

        Shape: z (B, K, N, D), spectrum (B, F, N) -> (B, S, (N - 1) * hop + n_fft).
        """
        mask_re, mask_im = self.mask(z)
        out_re, out_im = apply_complex_mask(mask_re, mask_im, spec_re, spec_im)
        y = self.istft(out_re.flatten(0, 1), out_im.flatten(0, 1))
        return y.reshape(spec_re.shape[0], self.n_src, y.shape[-1])

    # -- streaming core (causal configs) --------------------------------------------------------
    def _n_rnn_states(self) -> int:
        return 2 if self.config.rnn_type == "lstm" else 1

    def init_core_state(self, n_batch: int) -> list[torch.Tensor]:
        """Input tail, each time RNN's state, overlap-add tail; zeros: silence before t=0."""
        c = self.config
        rnn = [
            torch.zeros(1, n_batch * len(self.widths), c.hidden)
            for _ in range(c.n_blocks * self._n_rnn_states())
        ]
        return [
            torch.zeros(n_batch, self.stft.left_pad),
            *rnn,
            torch.zeros(n_batch, self.n_src, self.stream_core_delay),
        ]

    def core_state_names(self) -> list[str]:
        kinds = ["h", "c"][: self._n_rnn_states()]
        rnn = [f"block{i}_time_{k}" for i in range(self.config.n_blocks) for k in kinds]
        return ["input_tail", *rnn, "overlap_tail"]

    def step_core(
        self, x: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """k new hops -> k hops of output, ``stream_core_delay`` samples late.

        Shape: (B, k * hop) -> (B, S, k * hop), k >= 1; B mono streams.
        """
        if not self.causal:
            raise InputError(f"{type(self).__name__}: streaming needs a causal config")
        n_new = x.shape[-1]
        per_block = self._n_rnn_states()
        # the last n_fft - hop input samples start the next frame
        buf = torch.cat([state[0], x], dim=-1)
        spec_re, spec_im = self.stft(buf)  # k frames
        z = self.band_split(spec_re, spec_im)
        new_rnn: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            z, block_state = block(z, state[1 + i * per_block : 1 + (i + 1) * per_block])
            new_rnn.extend(block_state)
        # sample 0 of the first new frame was emitted last call (the window is zero there)
        y = self.synthesise(z, spec_re, spec_im)[..., 1:]
        tail = state[-1]
        y = y + F.pad(tail, (0, y.shape[-1] - tail.shape[-1]))
        return y[..., :n_new], [buf[..., n_new:], *new_rnn, y[..., n_new:]]


# 8 kHz: 32 ms frames, 16 ms hop; 15 bands
SPEECH_8K = BSRNNConfig()
register_config("bsrnn-8k", "bsrnn", SPEECH_8K)
register_config("bsrnn-8k-causal", "bsrnn", dataclasses.replace(SPEECH_8K, causal=True))
register_config(
    "bsrnn-16k", "bsrnn", dataclasses.replace(SPEECH_8K, sample_rate=16000, n_fft=512, hop=256)
)
register_config(
    "bsrnn-music",
    "bsrnn",
    BSRNNConfig(
        n_src=4,
        sample_rate=44100,
        n_fft=2048,
        hop=512,
        band_hz=MUSIC_BANDS,
        feature_dim=64,
        hidden=64,
        n_blocks=4,
        mask_hidden=32,
        source_names=("vocals", "drums", "bass", "other"),
    ),
)
# 16 kHz stereo music (edgesep's synthetic songs; 44.1 kHz is too slow to train on a small CPU):
# 64 ms frames, 16 ms hop, the music bands up to 8 kHz (19 bands)
register_config(
    "bsrnn-music-16k",
    "bsrnn",
    BSRNNConfig(
        n_src=4,
        sample_rate=16000,
        n_fft=1024,
        hop=256,
        band_hz=MUSIC_BANDS[:4],
        feature_dim=48,
        hidden=48,
        n_blocks=3,
        mask_hidden=32,
        source_names=("vocals", "drums", "bass", "other"),
    ),
)
register_config(
    "bsrnn-test",
    "bsrnn",
    BSRNNConfig(
        n_fft=64,
        hop=16,
        band_widths=(2, 2, 4, 8, 17),
        feature_dim=8,
        hidden=8,
        n_blocks=2,
        mask_hidden=8,
    ),
)
