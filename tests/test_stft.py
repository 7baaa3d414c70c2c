"""The convolutional STFT/iSTFT against torch.stft and perfect reconstruction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgesep.nn.stft import ISTFT, STFT, sqrt_hann


@pytest.mark.parametrize(("n_fft", "hop"), [(256, 64), (128, 64), (16, 4)])
def test_stft_matches_torch_stft(n_fft: int, hop: int) -> None:
    x = torch.randn(2, 3000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    real, imag = STFT(n_fft, hop).double()(x)
    ref = torch.stft(x, n_fft, hop, window=sqrt_hann(n_fft), center=False, return_complex=True)
    # the buffers are float32, so the comparison is at float32 precision
    torch.testing.assert_close(real, ref.real, rtol=0, atol=1e-4)
    torch.testing.assert_close(imag, ref.imag, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("n_fft", "hop"), [(256, 64), (128, 64), (512, 128)])
def test_istft_reconstructs_the_steady_state(n_fft: int, hop: int) -> None:
    x = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    stft, istft = STFT(n_fft, hop), ISTFT(n_fft, hop)
    y = istft(*stft(F.pad(x, (stft.left_pad, 0))))[:, stft.left_pad :]
    n = y.shape[-1] - stft.left_pad  # the last n_fft - hop samples lack later frames
    torch.testing.assert_close(y[:, :n], x[:, :n], rtol=0, atol=1e-5)


def test_hop_must_divide_the_window() -> None:
    with pytest.raises(ValueError, match="multiple of hop"):
        STFT(256, 100)
