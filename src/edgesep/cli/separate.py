"""``edgesep separate``: split audio files into one file per source, streaming from disk."""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from edgesep.audio import AudioError, info
from edgesep.chunking import CHUNK_SECONDS, OVERLAP_SECONDS
from edgesep.cli.common import console, error, fail, one_line, user_errors, warn
from edgesep.zoo import DEFAULT_MODEL


def set_threads(threads: int | None) -> int:
    """Use ``threads`` CPU threads for torch (when given); returns the count in force."""
    if threads is not None:
        if threads < 1:
            fail(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")


def _say_lost_band(path: Path, model_rate: int) -> None:
    """One line when the model cannot separate all of the input's band (it runs resampled)."""
    try:
        rate = info(path).sample_rate
    except AudioError:
        return  # separate_file reports the file's problem
    if rate > model_rate:
        warn(
            f"{path}: the model works at {model_rate} Hz, so the {model_rate // 2}-{rate // 2} Hz "
            f"band of this {rate} Hz input is left out of every source"
        )


ThreadsOption = Annotated[
    int | None, typer.Option(help="CPU threads for torch (default: torch's choice).")
]


def separate(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, ogg) to separate.")],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Folder for OUT/<input stem>/<source>.wav.")
    ],
    model: Annotated[
        str,
        typer.Option(
            "-m", "--model", help="Bundled model name, artifact path, or exported .onnx graph."
        ),
    ] = DEFAULT_MODEL,
    chunk_seconds: Annotated[
        float, typer.Option(help="Seconds of audio per model call.")
    ] = CHUNK_SECONDS,
    overlap_seconds: Annotated[
        float, typer.Option(help="Cross-faded overlap between chunks, seconds.")
    ] = OVERLAP_SECONDS,
    threads: ThreadsOption = None,
    subtype: Annotated[
        str, typer.Option(help="Sample format of the written sources: PCM_16, PCM_24 or FLOAT.")
    ] = "PCM_16",
    rescale: Annotated[
        bool, typer.Option(help="Bring the sources to the mixture's level (least squares).")
    ] = True,
) -> None:
    """Separate each INPUT into one file per source, at the input's rate, channels and length."""
    if subtype not in SUBTYPES:
        fail(f"--subtype must be one of {', '.join(SUBTYPES)}, got {subtype!r}")
    _refuse_shared_stems(inputs)
    from edgesep.models.apply import separate_file
    from edgesep.zoo import load

    n_threads = set_threads(threads)
    if model.endswith(".onnx"):  # an exported graph runs on ONNX Runtime, without torch
        from edgesep.runtime import OfflineSession

        with user_errors():
            graph = OfflineSession(
                model, chunk_seconds, overlap_seconds, rescale=rescale, threads=n_threads
            )
        rate, names = graph.sample_rate, graph.source_names
        console.print(f"graph {model} (ONNX Runtime): {rate} Hz, sources {', '.join(names)}")

        def run(path: Path, progress: Callable[[int, int], None]) -> dict[str, Path]:
            return graph.separate_file(path, out, progress=progress, subtype=subtype)
    else:
        with user_errors():
            sep = load(model)
        rate, names = sep.sample_rate, sep.source_names
        console.print(
            f"model {model}: {sep.n_params() / 1e6:.3f} M params, {sep.sample_rate} Hz, "
            f"sources {', '.join(sep.source_names)}; {n_threads} thread(s)"
        )

        def run(path: Path, progress: Callable[[int, int], None]) -> dict[str, Path]:
            return separate_file(
                sep,
                path,
                out,
                chunk_seconds,
                overlap_seconds,
                progress=progress,
                subtype=subtype,
                rescale=rescale,
            )

    _refuse_writing_over_inputs(inputs, out, names)
    failed = 0
    signal.signal(signal.SIGTERM, _interrupt)  # unwinds like Ctrl-C: the temp files go
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        for path in inputs:
            task = bar.add_task(path.name, total=None)
            _say_lost_band(path, rate)

            def report(done: int, total: int, task_id: TaskID = task) -> None:
                bar.update(task_id, completed=done, total=total)

            try:
                written = run(path, report)
            except KeyboardInterrupt:
                bar.remove_task(task)
                error(f"interrupted while separating {path}; no partial output was left")
                raise typer.Exit(code=130) from None
            except AudioError as exc:
                bar.remove_task(task)
                error(one_line(exc))
                failed += 1
                continue
            except (ValueError, OSError) as exc:  # e.g. a bad --chunk-seconds, a full disk
                bar.remove_task(task)
                fail(f"{path}: {one_line(exc)}")
            bar.remove_task(task)
            folder = next(iter(written.values())).parent
            console.print(f"{path} -> {folder}/ ({', '.join(p.name for p in written.values())})")
    if failed:
        fail(f"{failed} of {len(inputs)} file(s) failed")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _refuse_shared_stems(inputs: list[Path]) -> None:
    """Two inputs with one stem would write the same OUT/<stem>/ folder: refuse, naming both."""
    seen: dict[str, Path] = {}
    for path in inputs:
        if path.stem in seen and seen[path.stem].resolve() != path.resolve():
            fail(
                f"{seen[path.stem]} and {path} would both write OUT/{path.stem}/; separate them "
                "into different --out folders, or rename one"
            )
        seen[path.stem] = path


def _refuse_writing_over_inputs(inputs: list[Path], out: Path, sources: Sequence[str]) -> None:
    """Never write a source over an input file (``separate s1/s1.wav -o .`` would)."""
    given = {p.resolve(): p for p in inputs}
    for path in inputs:
        for name in sources:
            target = (out / path.stem / f"{name}.wav").resolve()
            if target in given:
                fail(
                    f"{given[target]}: the {name} source would be written over this input; "
                    "choose another --out folder"
                )


def register(app: typer.Typer) -> None:
    app.command("separate")(separate)
