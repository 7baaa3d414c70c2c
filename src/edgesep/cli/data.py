"""``edgesep data ...``: generate speech corpora and build WSJ0-2mix-style mixture sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from edgesep.cli.common import console, user_errors
from edgesep.cli.progress import progress_callback

# the Debian install locations (edgesep.data.realspeech), repeated so --help needs no import
ASTERISK = Path("/usr/share/asterisk/sounds")
KLETTRES = Path("/usr/share/klettres")

data_app = typer.Typer(help="Generate speech corpora and mixture sets.", no_args_is_help=True)


@data_app.command("synth-speech")
def synth_speech(
    out: Annotated[Path, typer.Argument(help="Output corpus folder.")],
    n_train: Annotated[int, typer.Option(help="Training utterances.")] = 3000,
    n_valid: Annotated[int, typer.Option(help="Validation utterances.")] = 150,
    n_test: Annotated[int, typer.Option(help="Test utterances.")] = 300,
    sample_rate: Annotated[int, typer.Option()] = 8000,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Synthetic speech of many eSpeak NG voices (splits disjoint in voices and sentences)."""
    from edgesep.data.synth.speech import generate_synthetic_corpus

    with user_errors(), progress_callback("synthesising") as cb:
        counts = {"train": n_train, "valid": n_valid, "test": n_test}
        generate_synthetic_corpus(out, counts, sample_rate, seed, progress=cb)
    console.print(f"corpus written to {out} (card: {out / 'card.json'})")


@data_app.command("real-speech")
def real_speech(
    out: Annotated[Path, typer.Argument(help="Output corpus folder.")],
    sample_rate: Annotated[int, typer.Option()] = 8000,
    seed: Annotated[int, typer.Option()] = 0,
    asterisk_root: Annotated[Path, typer.Option(help="Asterisk sounds folder.")] = ASTERISK,
    klettres_root: Annotated[Path, typer.Option(help="klettres data folder.")] = KLETTRES,
) -> None:
    """The real-speech pool from Debian packages (scripts/install_speech_packages.sh)."""
    from edgesep.data.realspeech import build_real_corpus

    with user_errors(), progress_callback("collecting speakers") as cb:
        build_real_corpus(
            out,
            sample_rate,
            seed,
            progress=cb,
            asterisk_root=asterisk_root,
            klettres_root=klettres_root,
        )
    console.print(f"corpus written to {out} (card: {out / 'card.json'})")


@data_app.command("real-voices")
def real_voices(
    out: Annotated[Path, typer.Argument(help="Output corpus folder.")],
    sample_rate: Annotated[int, typer.Option()] = 8000,
    seed: Annotated[int, typer.Option()] = 0,
    root: Annotated[Path, typer.Option(help="File-system root the packages are under.")] = Path(
        "/"
    ),
) -> None:
    """The many-voice real corpus: every Debian voice of docs/DATA.md, cleaned, split by speaker."""
    from edgesep.data.realvoices import build_voice_corpus

    with user_errors(), progress_callback("collecting voices") as cb:
        build_voice_corpus(out, sample_rate, seed, root=root, progress=cb)
    console.print(f"corpus written to {out} (card: {out / 'card.json'})")


@data_app.command("rooms")
def rooms(
    out: Annotated[Path, typer.Argument(help="Output folder (rooms.npz + card.json).")],
    n_rooms: Annotated[int, typer.Option(help="Rooms to simulate.")] = 500,
    sample_rate: Annotated[int, typer.Option()] = 8000,
    n_src: Annotated[int, typer.Option(help="Talkers per room.")] = 2,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """A bank of simulated shoebox rooms (pyroomacoustics): reverberant and early-echo responses."""
    from edgesep.data.rooms import build_room_bank

    with user_errors(), progress_callback("simulating rooms") as cb:
        build_room_bank(out, n_rooms, sample_rate, n_src, seed, progress=cb)
    console.print(f"{n_rooms} rooms written to {out} (card: {out / 'card.json'})")


@data_app.command("kokoro")
def kokoro(
    out: Annotated[Path, typer.Argument(help="Output corpus folder.")],
    n_train: Annotated[int, typer.Option(help="Training timbres (speakers).")] = 150,
    n_valid: Annotated[int, typer.Option(help="Validation timbres.")] = 0,
    utts: Annotated[int, typer.Option(help="Utterances per timbre.")] = 6,
    sample_rate: Annotated[int, typer.Option()] = 8000,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads.")] = 1,
    cache_dir: Annotated[Path, typer.Option(help="Where the model is assembled.")] = Path(
        "data/cache"
    ),
) -> None:
    """Kokoro-82M speech of many blended timbres (scripts/install_kokoro.sh); resumable."""
    from edgesep.data.synth.kokoro import generate_kokoro_corpus

    counts = {k: v for k, v in (("train", n_train), ("valid", n_valid)) if v > 0}
    with user_errors(), progress_callback("synthesising (Kokoro)") as cb:
        generate_kokoro_corpus(
            out, counts, utts, sample_rate, seed, cache_dir, threads=threads, progress=cb
        )
    console.print(f"corpus written to {out} (card: {out / 'card.json'})")


@data_app.command("smoke")
def smoke(
    out: Annotated[Path, typer.Argument(help="Output folder (corpus/ and valid/).")],
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """A tiny tone corpus and validation mixtures for smoke runs (configs/train/smoke-8k.yaml)."""
    from edgesep.data.synth.tones import build_smoke_data

    with user_errors():
        build_smoke_data(out, seed=seed)
    console.print(f"smoke data written to {out}")


@data_app.command("mix")
def mix(
    corpus: Annotated[Path, typer.Argument(help="Utterance corpus folder.")],
    out: Annotated[Path, typer.Argument(help="Output mixture folder (mix/ s1/ s2/).")],
    split: Annotated[str, typer.Option(help="Corpus split to draw from.")] = "test",
    n: Annotated[int, typer.Option(help="Number of mixtures.")] = 300,
    sample_rate: Annotated[int, typer.Option()] = 8000,
    mode: Annotated[str, typer.Option(help="min (truncate) or max (zero-pad).")] = "min",
    seed: Annotated[int, typer.Option()] = 0,
    overwrite: Annotated[bool, typer.Option()] = False,
) -> None:
    """WSJ0-2mix-style two-speaker mixtures with a LibriMix-style metadata CSV and a card."""
    from edgesep.data.corpus import load_corpus
    from edgesep.data.mixing import build_mixtures

    if mode not in ("min", "max"):
        raise typer.BadParameter("mode must be min or max")
    mix_mode: Literal["min", "max"] = "min" if mode == "min" else "max"
    with user_errors(), progress_callback("mixing") as cb:
        utts = load_corpus(corpus, split)
        build_mixtures(
            utts,
            out,
            n,
            sample_rate,
            mix_mode,
            seed=seed,
            progress=cb,
            overwrite=overwrite,
        )
    console.print(f"{n} mixtures written to {out}")


@data_app.command("music")
def music(
    out: Annotated[Path, typer.Argument(help="Output folder (MUSDB18-HQ layout).")],
    n_train: Annotated[int, typer.Option(help="Training songs.")] = 100,
    n_valid: Annotated[int, typer.Option(help="Validation songs.")] = 6,
    n_test: Annotated[int, typer.Option(help="Test songs.")] = 10,
    seconds: Annotated[float, typer.Option(help="Song length in seconds (whole bars).")] = 30.0,
    sample_rate: Annotated[int, typer.Option()] = 16000,
    seed: Annotated[int, typer.Option()] = 0,
    overwrite: Annotated[bool, typer.Option()] = False,
    soundfont: Annotated[
        Path | None, typer.Option(help="General MIDI .sf2 [pretty_midi's TimGM6mb.sf2].")
    ] = None,
) -> None:
    """Synthetic multitrack songs: vocals/drums/bass/other stems and their exact-sum mixture."""
    from edgesep.data.synth.music_render import generate_music_dataset

    with user_errors(), progress_callback("rendering songs") as cb:
        counts = {"train": n_train, "valid": n_valid, "test": n_test}
        card = generate_music_dataset(
            out,
            counts,
            sample_rate,
            seed,
            seconds,
            progress=cb,
            overwrite=overwrite,
            soundfont=soundfont,
        )
    console.print(
        f"{sum(counts.values())} songs ({card['duration_seconds'] / 60:.1f} min) written to "
        f"{out}, rendered at {card['render_x_realtime']}x real time (card: {out / 'card.json'})"
    )


@data_app.command("noisy")
def noisy(
    clean: Annotated[Path, typer.Argument(help="Clean mixture folder (mix/ s1/ s2/).")],
    out: Annotated[Path, typer.Argument(help="Output folder (WHAM! layout).")],
    babble_corpus: Annotated[
        Path | None, typer.Option(help="Utterance corpus for babble (voices not in CLEAN).")
    ] = None,
    babble_split: Annotated[str, typer.Option(help="Split of the babble corpus.")] = "train",
    noise_dir: Annotated[
        Path | None, typer.Option(help="Folder of real noise recordings (adds kind 'real').")
    ] = None,
    kinds: Annotated[
        str, typer.Option(help="Comma-separated noise kinds: coloured,babble,transient,real.")
    ] = "coloured,babble,transient",
    snr_low: Annotated[float, typer.Option(help="Lowest SNR, dB (louder speaker / noise).")] = -6.0,
    snr_high: Annotated[float, typer.Option(help="Highest SNR, dB.")] = 3.0,
    seed: Annotated[int, typer.Option()] = 0,
    overwrite: Annotated[bool, typer.Option()] = False,
) -> None:
    """WHAM!-style noisy speech: mix_both/ mix_clean/ noise/ s1/ s2/ at a drawn SNR."""
    from edgesep.data.noisy import build_noisy_mixtures

    with user_errors(), progress_callback("adding noise") as cb:
        card = build_noisy_mixtures(
            clean,
            out,
            babble_corpus=babble_corpus,
            babble_split=babble_split,
            noise_dir=noise_dir,
            kinds=[k.strip() for k in kinds.split(",") if k.strip()],
            snr_db=(snr_low, snr_high),
            seed=seed,
            progress=cb,
            overwrite=overwrite,
        )
    console.print(f"{card['counts']['mixtures']} noisy mixtures written to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
