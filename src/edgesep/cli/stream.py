"""``edgesep stream``: separate audio as it arrives, through a causal model's step graph.

The input is a file (read block by block), raw PCM on stdin (``-``), or the microphone
(``--mic``, through sounddevice when it is installed and an input device exists). Blocks are
pushed at real time (``--no-pace``: as fast as possible, with the real-time schedule simulated)
into the torch-free :class:`~edgesep.runtime.StreamingSession`; the sources are written aligned
with the input (the stream's delay removed) at the input's rate. Blocks of whole graph calls
(the default) stream *aligned*, delayed by the core's delay alone. The run reports per-hop
compute p50/p99, total latency (algorithmic + compute), each block's response time, and the
deadline misses: at ``--deadline-ms`` (default two blocks) and at a ladder of other deadlines,
each with the playback latency it implies (algorithmic + block + deadline).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgesep.audio import AtomicWriter, StreamResampler, info, iter_blocks
from edgesep.cli.common import console, fail, user_errors
from edgesep.cli.stream_io import (
    RAW_FORMATS,
    OutputWriter,
    check_mic,
    mic_blocks,
    reblock,
    stdin_blocks,
)
from edgesep.errors import InputError
from edgesep.runtime import Model, StreamingSession
from edgesep.runtime.realtime import RealtimeRunner

DEFAULT_STREAM_MODEL = "convtasnet-tiny-edge-stream-8k"


def load_stream_model(name: str, hops_per_step: int, work_dir: Path, threads: int) -> Model:
    """A step graph for ``name``: an ``.onnx`` file, a bundled runtime model, or else anything
    the torch zoo loads (bundled name, artifact path), exported on the fly (needs torch)."""
    from edgesep.runtime.model import ModelLoadError, resolve

    try:
        return Model(resolve(name), threads=threads)
    except ModelLoadError:
        if name.endswith(".onnx"):
            raise
    from edgesep.export.streaming import check_step_parity, export_step_onnx
    from edgesep.zoo import load

    torch_model = load(name)
    if not torch_model.causal:
        raise InputError(f"{name}: not a causal model; streaming needs a causal config")
    path = work_dir / f"{Path(name).name}.step.onnx"
    export_step_onnx(torch_model, path, hops_per_step=hops_per_step, dynamic=True)
    check_step_parity(torch_model, path)
    return Model(path, threads=threads)


def _report_table(summary: dict[str, Any]) -> Table:
    t = Table(title="stream report" + (" (paced)" if summary["paced"] else " (unpaced, simulated)"))
    t.add_column("measure")
    t.add_column("value", justify="right")
    rows = [
        ("audio", f"{summary['audio_seconds']:.2f} s in {summary['n_blocks']} blocks"),
        ("hop / hops per call", f"{summary['hop_ms']:.2f} ms / {summary['hops_per_step']}"),
        ("algorithmic latency", f"{summary['algorithmic_latency_ms']:.2f} ms"),
        (
            "per-hop compute p50 / p99 (wall)",
            f"{summary['per_hop_p50_ms']:.3f} / {summary['per_hop_p99_ms']:.3f} ms "
            f"({100 * summary['per_hop_p99_share_of_hop']:.0f}% of the hop at p99)",
        ),
        (
            "per-hop compute p50 / p99 (CPU)",
            f"{summary['per_hop_cpu_p50_ms']:.3f} / {summary['per_hop_cpu_p99_ms']:.3f} ms",
        ),
        ("total latency p99", f"{summary['total_latency_p99_ms']:.2f} ms (algorithmic + compute)"),
        (
            "response time p50 / p99 / max",
            f"{summary['response_p50_ms']:.2f} / {summary['response_p99_ms']:.2f} / "
            f"{summary['max_response_ms']:.2f} ms (block arrival to its output)",
        ),
        (
            "deadline misses",
            f"{summary['deadline_misses']} of {summary['n_blocks']} at "
            f"{summary['deadline_ms']:.2f} ms (worst {summary['max_lateness_ms']:.2f} ms late); "
            f"{summary['deadline_misses_cpu']} with CPU times as costs",
        ),
        (
            "misses at other deadlines",
            ", ".join(f"{n} at {d} ms" for d, n in summary["misses_by_deadline_ms"].items()),
        ),
        (
            "playback latency",
            f"{summary['playback_latency_ms']:.2f} ms (algorithmic + block + deadline)",
        ),
        (
            "slowest push",
            f"{summary['max_push_ms']:.2f} ms wall / {summary['max_push_cpu_ms']:.2f} ms CPU; "
            f"{summary['pushes_off_cpu_over_2ms']} pushes off the CPU for over 2 ms",
        ),
        ("real-time factor", f"{summary['rtf']:.3f} (CPU time {summary['rtf_cpu']:.3f})"),
    ]
    if summary.get("steal_ms") is not None:
        rows.append(
            ("hypervisor steal (all CPUs)", f"{summary['steal_ms']:.0f} ms during the stream")
        )
    for k, v in rows:
        t.add_row(k, v)
    return t


def stream(
    source: Annotated[
        str | None, typer.Argument(help="Audio file, or - for raw PCM on stdin.")
    ] = None,
    model: Annotated[
        str, typer.Option("-m", "--model", help="Bundled name, .onnx step graph, or artifact.")
    ] = DEFAULT_STREAM_MODEL,
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Folder for OUT/<input stem>/<source>.wav.")
    ] = Path("out/stream"),
    pace: Annotated[
        bool, typer.Option("--pace/--no-pace", help="Real time, or as fast as possible.")
    ] = True,
    hops_per_step: Annotated[
        int | None, typer.Option(help="Hops per graph call (default: the graph's).")
    ] = None,
    block_ms: Annotated[
        float | None, typer.Option(help="Input block size in ms (default: one graph call).")
    ] = None,
    rate: Annotated[int, typer.Option(help="Sample rate of stdin PCM or the microphone.")] = 8000,
    fmt: Annotated[str, typer.Option("--format", help="stdin PCM: s16le or f32le.")] = "s16le",
    channels: Annotated[int, typer.Option(help="Channels of stdin PCM or the microphone.")] = 1,
    mic: Annotated[bool, typer.Option("--mic", help="Read the microphone (sounddevice).")] = False,
    seconds: Annotated[float, typer.Option(help="Microphone recording length.")] = 10.0,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads.")] = 1,
    subtype: Annotated[str, typer.Option(help="Output WAV subtype.")] = "FLOAT",
    rescale: Annotated[
        bool,
        typer.Option(help="Bring the sources to the mixture's level (causal least squares)."),
    ] = True,
    report: Annotated[Path | None, typer.Option(help="Also write the report as JSON.")] = None,
    spin_ms: Annotated[
        float,
        typer.Option(
            help="Paced: busy-wait this long before each block arrives instead of sleeping "
            "(costs that share of a core; 0 sleeps throughout)."
        ),
    ] = 0.5,
    rt_priority: Annotated[
        int,
        typer.Option(
            help="Run the stream thread under SCHED_FIFO at this priority (1-99; Linux, needs "
            "root, CAP_SYS_NICE or ulimit -r); 0 keeps the normal policy."
        ),
    ] = 0,
    aligned: Annotated[
        bool | None,
        typer.Option(
            "--aligned/--unaligned",
            help="Aligned: whole graph calls only, the delay is the core's own (2 ms for the "
            "bundled models instead of 9.875 ms) and the last block is padded with zeros. "
            "Default: aligned when the block is a whole number of calls.",
        ),
    ] = None,
    deadline_ms: Annotated[
        float | None,
        typer.Option(
            help="Time each block's output has after the block arrived before it counts as a "
            "miss (default: two blocks). Longer is an output jitter buffer: it adds to the "
            "playback latency what it allows in stalls."
        ),
    ] = None,
) -> None:
    """Separate INPUT as it arrives with a causal model; report latency and deadline misses."""
    if (source is None) == (not mic):
        fail("give one input: an audio file, - for stdin, or --mic")
    if fmt not in RAW_FORMATS:
        fail(f"--format must be one of {', '.join(RAW_FORMATS)}, got {fmt!r}")
    if spin_ms < 0:
        fail(f"--spin-ms must be >= 0, got {spin_ms}")
    if deadline_ms is not None and deadline_ms <= 0:
        fail(f"--deadline-ms must be positive, got {deadline_ms}")
    if block_ms is not None and block_ms <= 0:
        fail(f"--block-ms must be positive, got {block_ms}")
    with user_errors(), tempfile.TemporaryDirectory(prefix="edgesep-stream-") as tmp:
        # the input first: a missing file or microphone fails before a model is loaded
        if mic:
            check_mic()
        elif source != "-":
            info(str(source))
        net = load_stream_model(model, hops_per_step or 4, Path(tmp), threads)
        n_chan = channels
        if source not in (None, "-"):
            meta = info(source)
            in_rate, n_chan, total = meta.sample_rate, meta.n_channels, meta.n_frames
        else:
            in_rate, total = rate, None
        # a first session checks the graph streams and gives its call size; --rescale runs in
        # the writer thread (stream_io.OutputWriter), off the real-time path, so not in here
        session = StreamingSession(net, n_chan, hops_per_step=hops_per_step, rescale=False)
        block = session.step_samples
        if block_ms is not None:
            block = max(1, round(block_ms * session.sample_rate / 1000))
        whole = block % session.step_samples == 0
        if aligned and not whole:
            fail(
                f"--aligned pushes whole calls: --block-ms must be a multiple of "
                f"{1000 * session.step_samples / session.sample_rate:g} ms"
            )
        if aligned or (aligned is None and whole):
            session = StreamingSession(
                net, n_chan, hops_per_step=hops_per_step, aligned=True, rescale=False
            )
        if deadline_ms is None:  # two blocks: see docs/RUNTIME.md, "playback latency"
            deadline_ms = 2000.0 * block / session.sample_rate
        in_block = max(1, round(block * in_rate / session.sample_rate))
        if source is None:
            blocks = mic_blocks(rate, channels, in_block, seconds)
            stem = "mic"
        elif source == "-":
            blocks = stdin_blocks(fmt, channels, in_block)
            stem = "stdin"
        else:
            stem = Path(source).stem
            for name in session.source_names:  # never write a source over the input
                if (out / stem / f"{name}.wav").resolve() == Path(source).resolve():
                    fail(
                        f"{source}: the {name} source would be written over this input; "
                        "choose another --out folder"
                    )
            blocks = iter_blocks(source, in_block)
        console.print(
            f"model {net.name}: {session.sample_rate} Hz, hop {session.info.stream_hop} samples, "
            f"{session.hops_per_step} hops per call, delay {session.delay} samples "
            f"({1000 * session.delay_seconds:.2f} ms); input {in_rate} Hz x {n_chan}"
        )
        summary = _run(
            session,
            blocks,
            in_rate,
            n_chan,
            total,
            block,
            pace,
            out / stem,
            subtype,
            rescale,
            spin_ms,
            rt_priority,
            deadline_ms,
        )
    console.print(_report_table(summary))
    console.print(f"wrote {out / stem}/ ({', '.join(f'{n}.wav' for n in session.source_names)})")
    if report is not None:
        from edgesep.atomic import write_text

        write_text(report, json.dumps(summary, indent=2) + "\n")


def _run(
    session: StreamingSession,
    blocks: Iterator[np.ndarray],
    in_rate: int,
    n_chan: int,
    total: int | None,
    block: int,
    pace: bool,
    folder: Path,
    subtype: str,
    rescale: bool,
    spin_ms: float = 0.0,
    rt_priority: int = 0,
    deadline_ms: float | None = None,
) -> dict[str, Any]:
    """Resample in, stream, drop the delay, rescale, resample out, write; returns the report
    summary. The loop pushes; an :class:`OutputWriter` thread does the rest, progress included:
    it draws the bar right after handling a push's output, when the stream thread has most of a
    block to sleep, so drawing never holds the interpreter lock as a block arrives."""
    down = StreamResampler(in_rate, session.sample_rate, n_chan)
    runner = RealtimeRunner(
        session,
        pace=pace,
        spin_seconds=spin_ms / 1000,
        rt_priority=rt_priority,
        deadline_seconds=None if deadline_ms is None else deadline_ms / 1000,
    )
    n_in = 0

    def model_blocks() -> Iterator[np.ndarray]:
        nonlocal n_in
        for b in blocks:
            n_in += b.shape[1]
            yield down.process(b)
        yield down.flush()

    with ExitStack() as stack:
        writers = [
            stack.enter_context(AtomicWriter(folder / f"{n}.wav", in_rate, n_chan, subtype))
            for n in session.source_names
        ]
        bar = stack.enter_context(
            Progress(
                TextColumn("[bold]stream"),
                BarColumn(),
                TextColumn("{task.completed:.1f}/{task.total} s  {task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
                auto_refresh=False,  # no drawing thread: the writer draws (see above)
            )
        )
        task = bar.add_task("", total=None if total is None else round(total / in_rate, 1))
        shown = 0.0

        def draw() -> None:
            nonlocal shown
            done = runner.report.audio_seconds
            if done - shown >= 0.5:
                shown = done
                misses = runner.report.deadline_misses
                bar.update(task, completed=done, description=f"misses {misses}")
                bar.refresh()

        out = OutputWriter(session, writers, in_rate, n_chan, rescale, after_output=draw)

        def kept(it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for b in it:
                if out.rescaler is not None:
                    out.put_input(b)
                yield b

        def cut_padding() -> None:  # the padded last block: write no more than the input
            out.limit = n_in if total is None else total

        pad = cut_padding if session.aligned else None
        try:
            for y in runner.process(kept(reblock(model_blocks(), block, pad))):
                out.put_output(y)
                if out.error is not None:
                    break
            else:
                out.put_output(runner.flush())
        finally:
            out.close(n_in if total is None else total)
    return runner.report.summary()


def register(app: typer.Typer) -> None:
    app.command("stream")(stream)
