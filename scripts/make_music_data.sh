#!/usr/bin/env bash
# The synthetic multitrack songs the music models train and are scored on (docs/MUSIC.md).
# 100 train / 6 valid / 10 test songs of ~30 s, 16 kHz stereo, seed 0 -> data/music16k.
set -euo pipefail
EDGESEP=${EDGESEP:-.venv/bin/edgesep}
OUT=${1:-data/music16k}
[ -f "$OUT/card.json" ] || "$EDGESEP" data music "$OUT" --n-train 100 --n-valid 6 --n-test 10 \
  --seconds 30 --sample-rate 16000 --seed 0
