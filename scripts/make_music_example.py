"""Cut the bundled music example from a synthetic test song (docs/MUSIC.md).

Usage: python scripts/make_music_example.py [DATA_DIR] (default data/music16k)
Writes src/edgesep/zoo/examples/song_16k.wav: seconds 12-18 of test song test0001 (verse into
chorus), 16 kHz stereo 16-bit, about 380 kB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import soundfile as sf

from edgesep.zoo import EXAMPLES_DIR

SONG, START, STOP = "test0001", 12.0, 18.0


def main(data_dir: str = "data/music16k") -> None:
    path = Path(data_dir) / "test" / SONG / "mixture.wav"
    audio, sr = sf.read(str(path), dtype="int16")
    out = EXAMPLES_DIR / "song_16k.wav"
    sf.write(str(out), audio[round(START * sr) : round(STOP * sr)], sr, subtype="PCM_16")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main(*sys.argv[1:2])
