"""Sources at the mixture's level, causally: the stream's counterpart of the offline rescale.

Every path that separates has the same ``rescale`` option, on by default: ``separate`` and
``Separator.separate`` and ``OfflineSession`` rescale each chunk by least squares
(:func:`edgesep.chunking.rescale_to_mixture`); ``StreamingSession`` and ``edgesep stream`` use
:class:`CausalRescaler`, which sees only the past.
"""

from __future__ import annotations

import numpy as np

from edgesep.errors import InputError


class CausalRescaler:
    """Brings streamed sources to the mixture's level with causal least-squares gains.

    Offline separation rescales each chunk by the gains ``a = argmin ||mix - sum_i a_i est_i||``
    (:func:`edgesep.chunking.rescale_to_mixture`); a stream cannot see ahead, so here the normal
    equations are accumulated over the past with exponential forgetting (time constant
    ``tau_seconds``) and solved at each block, per channel. SI-SNR-trained models otherwise
    emit sources at an arbitrary gain (several times the mixture's level is common).

    Shape: process est (S, C, n), mix (C, n) aligned with it -> (S, C, n).
    """

    def __init__(self, n_src: int, n_chan: int, sample_rate: int, tau_seconds: float = 2.0) -> None:
        if tau_seconds <= 0:
            raise InputError(f"tau_seconds must be positive, got {tau_seconds}")
        self.gram = np.zeros((n_chan, n_src, n_src))
        self.proj = np.zeros((n_chan, n_src))
        self.tau_samples = tau_seconds * sample_rate

    def process(self, est: np.ndarray, mix: np.ndarray) -> np.ndarray:
        if est.shape[-1] == 0:
            return est
        e = est.astype(np.float64).transpose(1, 0, 2)  # (C, S, n)
        forget = float(np.exp(-est.shape[-1] / self.tau_samples))
        self.gram = forget * self.gram + e @ e.transpose(0, 2, 1)
        self.proj = forget * self.proj + np.einsum("csn,cn->cs", e, mix.astype(np.float64))
        n_src = self.gram.shape[-1]
        # a ridge of 1e-9 of the energy keeps silence (a zero Gram matrix) solvable
        ridge = 1e-9 * np.trace(self.gram, axis1=1, axis2=2)[:, None, None] + 1e-12
        gains = np.linalg.solve(self.gram + ridge * np.eye(n_src), self.proj[..., None])[..., 0]
        return (est * gains.T[:, :, None]).astype(np.float32)  # gains (C, S) -> (S, C, 1)
