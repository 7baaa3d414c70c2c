"""``edgesep demo``: separate the bundled two-speaker example with the default zoo model.

Prints the SI-SNR improvement of each separated source against the example's references, the
real-time factor and where the stems are, so a fresh install shows what it does in one command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from edgesep.cli.common import console, fail, user_errors
from edgesep.cli.separate import ThreadsOption, set_threads

EXAMPLE = "two_speakers_8k"


def _example_paths() -> tuple[Path, list[Path]]:
    from edgesep.zoo import EXAMPLES_DIR

    mix = EXAMPLES_DIR / f"{EXAMPLE}.wav"
    refs = [EXAMPLES_DIR / f"{EXAMPLE}_s{i}.wav" for i in (1, 2)]
    for path in (mix, *refs):
        if not path.is_file():
            fail(f"{path}: bundled example missing (reinstall edgesep, or use `edgesep separate`)")
    return mix, refs


def _si_snri(stems: list[Path], refs: list[Path], mix_path: Path) -> list[float]:
    """SI-SNRi (dB) of each reference's best-matching stem, mono, over the common length."""
    from edgesep.audio import read
    from edgesep.metrics.pit import best_permutation, reorder
    from edgesep.metrics.sisnr import si_snr, si_snri

    def mono(path: Path) -> np.ndarray:
        return read(path, mono=True)[0][0].astype(np.float64)

    est_list, ref_list, mix = [mono(p) for p in stems], [mono(p) for p in refs], mono(mix_path)
    n = min(len(x) for x in [*est_list, *ref_list, mix])
    est = torch.from_numpy(np.stack([x[:n] for x in est_list]))[None]
    ref = torch.from_numpy(np.stack([x[:n] for x in ref_list]))[None]
    perm, _ = best_permutation(est, ref, si_snr)
    scores = si_snri(reorder(est, perm), ref, torch.from_numpy(mix[:n])[None])
    return [float(v) for v in scores[0]]


def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the stems.")] = Path(
        "out/demo"
    ),
    threads: ThreadsOption = None,
) -> None:
    """Separate the bundled two-speaker example with the default model and score it."""
    from edgesep.audio import info
    from edgesep.models.apply import separate_file
    from edgesep.zoo import DEFAULT_MODEL, bundled_names, load

    if DEFAULT_MODEL not in bundled_names():
        fail(f"{DEFAULT_MODEL}: bundled default model missing (reinstall edgesep)")
    mix_path, refs = _example_paths()
    n_threads = set_threads(threads)
    with user_errors():
        model = load(DEFAULT_MODEL)
        meta = info(mix_path)
        if model.n_src != len(refs):
            fail(f"{DEFAULT_MODEL}: separates {model.n_src} sources, the example has {len(refs)}")
        start = time.perf_counter()
        written = separate_file(model, mix_path, out)
        elapsed = time.perf_counter() - start
        scores = _si_snri(list(written.values()), refs, mix_path)
    duration = meta.n_frames / meta.sample_rate
    console.print(
        f"model {DEFAULT_MODEL}: {model.n_params() / 1e6:.3f} M params; "
        f"input {mix_path.name}: {duration:.2f} s at {meta.sample_rate} Hz"
    )
    for i, score in enumerate(scores, start=1):
        console.print(f"  speaker {i}: SI-SNRi {score:+.2f} dB (best-matching stem)")
    console.print(f"  mean   : SI-SNRi {float(np.mean(scores)):+.2f} dB")
    console.print(
        f"real-time factor {elapsed / duration:.3f} ({elapsed:.2f} s for {duration:.2f} s of "
        f"audio, {n_threads} CPU thread(s), including file I/O)"
    )
    folder = next(iter(written.values())).parent
    console.print(f"stems in {folder}/: {', '.join(p.name for p in written.values())}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
