"""Metrics against closed forms and against the established implementation (mir_eval)."""

from __future__ import annotations

import functools
import itertools

import mir_eval
import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from edgesep.metrics import (
    best_permutation,
    bss_eval,
    pit_si_snr_loss,
    reorder,
    sdr,
    sdri,
    si_snr,
    si_snr_np,
    si_snri,
)

SR = 8000
# fast_bss_eval and mir_eval solve the same 512-tap least-squares problem in float64; they agree
# to ~1e-12 dB on these signals. 1e-6 dB leaves room for other BLAS builds.
SDR_TOL_DB = 1e-6

# si_snr adds EPS=1e-8 to the noise energy: with noise energies of ~1e-3 (scaled-down estimates
# at 40 dB) that biases the value by ~1e-5 dB, so closed forms are checked to 1e-4 dB
SI_SNR_TOL_DB = 1e-4

pytestmark = pytest.mark.filterwarnings("ignore:mir_eval.separation.bss_eval_sources")


def mir_eval_sources(est: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, ...]:
    """mir_eval's SDR, SIR, SAR, perm of one (S, T) example (ref first, as mir_eval wants)."""
    return mir_eval.separation.bss_eval_sources(ref, est, compute_permutation=True)


@functools.cache
def mir_case(kind: str, n_src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """A seeded (ref, shuffled estimates, shuffle, mir_eval result) case, shared between tests:
    mir_eval takes seconds per call (it solves an (S*512)^2 system), so each case runs once.
    """
    rng = np.random.default_rng(10 * n_src + (kind == "speech_like"))
    n_time = SR // 2
    ref = (
        rng.standard_normal((n_src, n_time))
        if kind == "random"
        else speech_like(n_src, n_time, rng)
    )
    shuffle = rng.permutation(n_src)
    while n_src > 1 and (shuffle == np.arange(n_src)).all():
        shuffle = rng.permutation(n_src)
    est = degrade(ref, rng)[shuffle]
    return ref, est, shuffle, mir_eval_sources(est, ref)


# ----------------------------------------------------------------------------- signals


def orthogonal_noise(ref: np.ndarray, energy: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise orthogonal to every row of ``ref`` (each zero-mean), of given energy."""
    n = rng.standard_normal(ref.shape[-1])
    n -= n.mean()
    basis, _ = np.linalg.qr(np.atleast_2d(ref).T)  # orthonormal columns spanning the refs
    n -= basis @ (basis.T @ n)
    return n * np.sqrt(energy / np.sum(n**2))


def zero_mean_noise(n_time: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(n_time)
    return x - x.mean()


def speech_like(n_src: int, n_time: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonic tones with gliding pitch, syllable-rate AM and a little noise (S, T)."""
    t = np.arange(n_time) / SR
    out = np.empty((n_src, n_time))
    for s in range(n_src):
        f0 = rng.uniform(90, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
        envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6)))
        out[s] = envelope**2 * voiced + 0.05 * rng.standard_normal(n_time)
    return out


def degrade(ref: np.ndarray, rng: np.random.Generator, crosstalk: float = 0.3) -> np.ndarray:
    """Estimates: each source lightly filtered, plus crosstalk from the others and noise."""
    n_src = ref.shape[0]
    est = np.empty_like(ref)
    for s in range(n_src):
        filtered = lfilter([1.0, 0.3, -0.1], [1.0, -0.2], ref[s])  # a short FIR/IIR colouring
        others = ref[np.arange(n_src) != s].sum(axis=0)
        est[s] = (
            filtered + crosstalk * others + 0.2 * ref[s].std() * rng.standard_normal(ref.shape[1])
        )
    return est


# ----------------------------------------------------------------------------- SI-SNR


@pytest.mark.parametrize("target_db", [-10.0, 0.0, 12.5, 40.0])
@pytest.mark.parametrize("scale", [0.1, 1.0, 7.0])
def test_si_snr_closed_form(target_db: float, scale: float) -> None:
    rng = np.random.default_rng(0)
    ref = zero_mean_noise(4000, rng)
    target_energy = scale**2 * np.sum(ref**2)
    est = scale * ref + orthogonal_noise(ref, target_energy / 10 ** (target_db / 10), rng)
    assert si_snr_np(est, ref) == pytest.approx(target_db, abs=SI_SNR_TOL_DB)


def test_si_snr_is_scale_invariant() -> None:
    rng = np.random.default_rng(1)
    ref = torch.from_numpy(rng.standard_normal((3, 2000)))
    est = ref + 0.5 * torch.from_numpy(rng.standard_normal((3, 2000)))
    base = si_snr(est, ref)
    for c in (0.05, 0.5, 20.0, -3.0):
        torch.testing.assert_close(si_snr(c * est, ref), base, rtol=0, atol=1e-6)
        torch.testing.assert_close(si_snr(est, c * ref), base, rtol=0, atol=1e-6)


def test_si_snr_zero_mean_handling() -> None:
    rng = np.random.default_rng(2)
    ref = zero_mean_noise(4000, rng)
    noise = orthogonal_noise(ref, np.sum(ref**2) / 10, rng)  # 10 dB
    offset = 0.5
    est = ref + noise + offset
    # zero_mean removes the offset; without it the offset (orthogonal to the zero-mean ref and
    # noise) is extra noise of energy offset^2 * T
    assert si_snr_np(est, ref) == pytest.approx(10.0, abs=1e-6)
    expected = 10 * np.log10(np.sum(ref**2) / (np.sum(noise**2) + offset**2 * ref.size))
    assert si_snr_np(est, ref, zero_mean=False) == pytest.approx(expected, abs=1e-6)
    assert expected < 10.0 - 1


def test_si_snri_values_and_sign() -> None:
    rng = np.random.default_rng(3)
    s1 = zero_mean_noise(4000, rng)
    s2 = orthogonal_noise(s1, 4 * np.sum(s1**2), rng)  # s2 is 6.02 dB louder than s1
    ref = torch.from_numpy(np.stack([s1, s2]))
    mix = ref.sum(0)
    # estimates at exactly 15 dB and 20 dB SI-SNR
    n1 = orthogonal_noise(ref.numpy(), np.sum(s1**2) / 10**1.5, rng)
    n2 = orthogonal_noise(ref.numpy(), np.sum(s2**2) / 10**2.0, rng)
    est = ref + torch.from_numpy(np.stack([n1, n2]))
    mix_db = 10 * np.log10(np.array([1 / 4, 4]))  # mixture vs s1 and vs s2
    expected = np.array([15.0, 20.0]) - mix_db
    np.testing.assert_allclose(si_snri(est, ref, mix).numpy(), expected, atol=1e-6)
    # the unprocessed mixture improves nothing; the swapped estimates are worse than it
    np.testing.assert_allclose(si_snri(mix.expand(2, -1), ref, mix).numpy(), 0.0, atol=1e-9)
    assert (si_snri(est.flip(0), ref, mix) < 0).all()


# ----------------------------------------------------------------------------- SDR

MIR_CASES = [("random", 2), ("speech_like", 2), ("speech_like", 3)]


@pytest.mark.parametrize(("kind", "n_src"), MIR_CASES)
def test_sdr_matches_mir_eval(kind: str, n_src: int) -> None:
    ref, est, shuffle, (want_sdr, want_sir, want_sar, want_perm) = mir_case(kind, n_src)
    got = bss_eval(est, ref)
    np.testing.assert_array_equal(got.perm, want_perm)
    np.testing.assert_array_equal(got.perm, np.argsort(shuffle))
    np.testing.assert_allclose(got.sdr, want_sdr, atol=SDR_TOL_DB, rtol=0)
    np.testing.assert_allclose(got.sir, want_sir, atol=SDR_TOL_DB, rtol=0)
    np.testing.assert_allclose(got.sar, want_sar, atol=SDR_TOL_DB, rtol=0)
    np.testing.assert_allclose(sdr(est, ref), want_sdr, atol=SDR_TOL_DB, rtol=0)
    # already matched: the same values without solving the permutation
    matched = est[want_perm]
    np.testing.assert_allclose(sdr(matched, ref, solve_perm=False), want_sdr, atol=SDR_TOL_DB)
    # a wrong order, not solved, is scored as given: much worse
    wrong = np.roll(matched, 1, axis=0)
    assert (sdr(wrong, ref, solve_perm=False) < want_sdr - 5).all()


def test_sdr_torch_batched_and_differentiable() -> None:
    cases = [mir_case(kind, 2) for kind in ("random", "speech_like")]
    ref = np.stack([c[0] for c in cases])  # (B=2, S=2, T)
    est = np.stack([c[1] for c in cases])
    want = np.stack([c[3][0] for c in cases])
    perm = np.stack([c[3][3] for c in cases])
    matched = np.take_along_axis(est, perm[..., None], axis=1)
    est_t = torch.tensor(matched, dtype=torch.float32, requires_grad=True)
    got = sdr(est_t, torch.tensor(ref, dtype=torch.float32), solve_perm=False)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.shape == (2, 2)
    # rounding the input to float32 moves the value by far less than 1e-3 dB
    np.testing.assert_allclose(got.detach().numpy(), want, atol=1e-3)
    got.sum().backward()
    assert est_t.grad is not None and torch.isfinite(est_t.grad).all()
    assert est_t.grad.abs().sum() > 0
    np.testing.assert_allclose(sdr(est, ref), want, atol=SDR_TOL_DB)  # numpy, batched, solved


def test_sdri_matches_mir_eval() -> None:
    ref, est, _, (est_sdr, *_) = mir_case("speech_like", 2)
    mix = ref.sum(0)
    want = est_sdr - mir_eval_sources(np.stack([mix, mix]), ref)[0]
    np.testing.assert_allclose(sdri(est, ref, mix), want, atol=2 * SDR_TOL_DB)
    assert (want > 3).all(), "the estimates are much better than the mixture"
    mix_only = sdri(np.stack([mix, mix]), ref, mix)
    np.testing.assert_allclose(mix_only, 0.0, atol=1e-9)


def test_sdr_rejects_bad_input() -> None:
    ref = np.random.default_rng(0).standard_normal((2, 1000))
    with pytest.raises(ValueError, match="same"):
        sdr(ref[:, :900], ref)
    silent = ref.copy()
    silent[1] = 0
    with pytest.raises(ValueError, match="non-silent"):
        sdr(ref, silent)
    with pytest.raises(ValueError, match="mix"):
        sdri(ref, ref, ref[0, :900])


# ----------------------------------------------------------------------------- PIT


def si_snr_reference(est: np.ndarray, ref: np.ndarray) -> float:
    """SI-SNR from its definition, written independently of edgesep (float64)."""
    est, ref = est - est.mean(), ref - ref.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


def brute_force_perm(est: np.ndarray, ref: np.ndarray) -> tuple[tuple[int, ...], float]:
    n_src = ref.shape[0]
    scored = [
        (np.mean([si_snr_reference(est[p[j]], ref[j]) for j in range(n_src)]), p)
        for p in itertools.permutations(range(n_src))
    ]
    best, perm = max(scored)
    return perm, float(best)


@pytest.mark.parametrize("n_src", [2, 3])
def test_pit_permutation_matches_mir_eval_and_brute_force(n_src: int) -> None:
    # the mir_eval cases, plus fresh ones checked against brute force and the known shuffle
    mir = [mir_case(kind, k) for kind, k in MIR_CASES if k == n_src]
    rng = np.random.default_rng(40 + n_src)
    ref_list, est_list, shuffles = [m[0] for m in mir], [m[1] for m in mir], [m[2] for m in mir]
    for _ in range(3):
        ref_list.append(speech_like(n_src, SR // 2, rng))
        shuffles.append(rng.permutation(n_src))
        est_list.append(degrade(ref_list[-1], rng)[shuffles[-1]])
    ref, est = np.stack(ref_list), np.stack(est_list)
    perm, best = best_permutation(torch.from_numpy(est), torch.from_numpy(ref), si_snr)
    assert perm.shape == (len(ref), n_src) and best.shape == (len(ref),)
    for b in range(len(ref)):
        want_perm, want_best = brute_force_perm(est[b], ref[b])
        assert tuple(perm[b].tolist()) == want_perm
        assert best[b].item() == pytest.approx(want_best, abs=1e-6)
        np.testing.assert_array_equal(perm[b].numpy(), np.argsort(shuffles[b]))
        if b < len(mir):
            np.testing.assert_array_equal(perm[b].numpy(), mir[b][3][3])
    matched = reorder(torch.from_numpy(est), perm).numpy()
    for b in range(len(ref)):
        np.testing.assert_array_equal(matched[b], est[b][perm[b].numpy()])


@pytest.mark.parametrize("n_src", [2, 3])
def test_pit_equals_brute_force_on_ambiguous_estimates(n_src: int) -> None:
    # random mixtures of the references: no clear answer, the argmax must still be exact
    rng = np.random.default_rng(50 + n_src)
    for _ in range(5):
        ref = rng.standard_normal((n_src, 500))
        est = rng.uniform(0, 1, (n_src, n_src)) @ ref + 0.5 * rng.standard_normal((n_src, 500))
        perm, best = best_permutation(
            torch.from_numpy(est[None]), torch.from_numpy(ref[None]), si_snr
        )
        want_perm, want_best = brute_force_perm(est, ref)
        assert tuple(perm[0].tolist()) == want_perm
        assert best[0].item() == pytest.approx(want_best, abs=1e-6)


def test_pit_loss_is_permutation_invariant_and_differentiable() -> None:
    rng = np.random.default_rng(60)
    ref = torch.from_numpy(rng.standard_normal((2, 3, 64)))
    est = (ref + 0.3 * torch.from_numpy(rng.standard_normal((2, 3, 64)))).requires_grad_(True)
    loss = pit_si_snr_loss(est, ref)
    want = -np.mean(
        [brute_force_perm(e, r)[1] for e, r in zip(est.detach().numpy(), ref.numpy(), strict=True)]
    )
    assert loss.item() == pytest.approx(want, abs=1e-6)
    torch.testing.assert_close(pit_si_snr_loss(est[:, [2, 0, 1]], ref), loss)
    loss.backward()
    assert est.grad is not None and torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda e: pit_si_snr_loss(e, ref), (est.detach().requires_grad_(True),)
    )


def test_sdr_works_with_two_torch_threads() -> None:
    """Regression: torch 2.13's oneMKL fails batched float64 512-tap solves on 2 threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rng = np.random.default_rng(3)
        ref = rng.standard_normal((2, 8000))
        est = ref + 0.1 * rng.standard_normal((2, 8000))
        assert np.all(sdr(est, ref, solve_perm=False) > 15)
        assert np.all(sdr(est, ref) > 15) and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
