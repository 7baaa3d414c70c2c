"""The Separator contract every model family implements.

``forward(mix)`` maps (B, C, T) to (B, S, C, T) for any T. ``separate`` is the convenience
entry for numpy audio at any sample rate: it resamples, chunks long input with overlap-add and
returns numpy (see :mod:`edgesep.models.apply`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from edgesep.chunking import CHUNK_SECONDS, OVERLAP_SECONDS, RESCALE
from edgesep.models.streaming import StreamingMixin


class Separator(StreamingMixin, nn.Module, ABC):
    """Base class: a waveform-in, sources-out separation model.

    Attributes every subclass sets: ``sample_rate``, ``n_src``, ``source_names``, ``causal``,
    ``lookahead_samples`` and ``config`` (its frozen config dataclass). ``hop`` is the frame hop
    in samples: the output is shift-equivariant only for shifts that are multiples of it, so
    chunked inference aligns its chunks to it. Causal families also implement the streaming
    core of :class:`~edgesep.models.streaming.StreamingMixin` (``init_state`` / ``step``).
    """

    family: ClassVar[str]
    config_class: ClassVar[type]
    sample_rate: int
    n_src: int
    source_names: tuple[str, ...]
    causal: bool
    lookahead_samples: int
    config: Any
    hop: int = 1

    @abstractmethod
    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        """Shape: (B, C, T) -> (B, S, C, T)."""

    def _set_contract(self, config: Any, hop: int) -> None:
        """Set the contract attributes every family reads from its config (which has
        ``sample_rate``, ``n_src``, ``source_names`` and ``causal``); sources default to s1, s2."""
        self.config = config
        self.sample_rate = config.sample_rate
        self.n_src = config.n_src
        self.source_names = config.source_names or tuple(f"s{i + 1}" for i in range(self.n_src))
        self.causal = config.causal
        self.hop = hop

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def for_export(self) -> Separator:
        """The same function in the form a device should run (e.g. norms folded into convs);
        ``self`` unless a family knows better. Never mutates ``self``."""
        return self

    @torch.no_grad()
    def separate(
        self,
        waveform: np.ndarray,
        sample_rate: int,
        chunk_seconds: float = CHUNK_SECONDS,
        overlap_seconds: float = OVERLAP_SECONDS,
        rescale: bool = RESCALE,
    ) -> np.ndarray:
        """Separate a numpy signal (T,) or (C, T) at ``sample_rate``.

        Returns (S, T) or (S, C, T) at the input's own sample rate and length; with ``rescale``
        the sources come back at the mixture's level (see ``rescale_to_mixture``).
        """
        from edgesep.models.apply import separate_array

        was_training = self.training
        self.eval()
        try:
            return separate_array(
                self, waveform, sample_rate, chunk_seconds, overlap_seconds, rescale
            )
        finally:
            self.train(was_training)
