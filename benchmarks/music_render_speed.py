"""How fast the synthetic songs render: x real time of all four stems, at 16 and 44.1 kHz.

Usage: python benchmarks/music_render_speed.py [--songs 5] [--seconds 30]
Renders songs 0..N-1 of seed 0 (compose, render every instrument, pan, level, master, quantise;
no file writing) on one thread and prints audio seconds / CPU seconds and / wall seconds. CPU
time is the figure to quote on a shared machine: wall time there depends on the neighbours.
"""

from __future__ import annotations

import argparse
import time

from edgesep.data.synth.music import compose_song
from edgesep.data.synth.music_render import StemRenderer, render_song


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--songs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    for rate in (16000, 44100):
        renderer = StemRenderer(rate)
        audio = cpu = wall = 0.0
        for i in range(args.songs):
            song = compose_song(0, i, args.seconds)
            c0, w0 = time.process_time(), time.perf_counter()
            stems, _, _ = render_song(song, rate, renderer)
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
            audio += stems.shape[-1] / rate
        print(
            f"{rate} Hz: {args.songs} songs, {audio:.1f} s of audio; "
            f"{audio / cpu:.0f}x real time per CPU second, {audio / wall:.0f}x per wall second"
        )


if __name__ == "__main__":
    main()
