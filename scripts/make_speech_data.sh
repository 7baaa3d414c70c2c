#!/usr/bin/env bash
# Build the speech data of the bundled models under data/ (docs/DATA.md): a synthetic eSpeak NG
# corpus, the real-speech pools (Debian packages), a bank of simulated rooms, and fixed
# WSJ0-2mix-style validation and test mixture sets.
# Usage: scripts/make_speech_data.sh [DATA_DIR]   (needs apt; the Kokoro corpus is the slow part)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data}
EDGESEP=${EDGESEP:-.venv/bin/edgesep}
bash scripts/install_speech_packages.sh
[ -d "$DATA/speech8k-synth" ] || $EDGESEP data synth-speech "$DATA/speech8k-synth" \
  --n-train 3000 --n-valid 150 --n-test 300 --seed 0
# the pool of the current bundled models (5 asterisk voices + klettres)
[ -d "$DATA/speech8k-real" ] || $EDGESEP data real-speech "$DATA/speech8k-real" --seed 0
# every real voice: 42 train / 4 valid / 10 test speakers
[ -d "$DATA/voices8k" ] || $EDGESEP data real-voices "$DATA/voices8k" --seed 0
[ -d "$DATA/rooms8k" ] || $EDGESEP data rooms "$DATA/rooms8k" --n-rooms 400 --seed 0
# Kokoro-82M speech of 150 blended timbres x 6 utterances (slow: its card gives the render speed;
# resumable: rerun the script after an interruption and it goes on where it stopped)
bash scripts/install_kokoro.sh
[ -d "$DATA/kokoro8k" ] || $EDGESEP data kokoro "$DATA/kokoro8k" --n-train 150 --utts 6 --threads 2
mixset() { [ -d "$DATA/mix8k/$2" ] || $EDGESEP data mix "$DATA/$1" "$DATA/mix8k/$2" "${@:3}"; }
mixset speech8k-synth synth-valid --split valid --n 100 --seed 1
mixset speech8k-real real-valid --split valid --n 40 --seed 2
mixset speech8k-synth synth-test --split test --n 300 --seed 3
mixset speech8k-real real-test --split test --n 300 --seed 4
mixset voices8k voices-valid --split valid --n 100 --seed 5
mixset voices8k voices-test --split test --n 300 --seed 6
# 16 kHz: the same voices and rooms at 16 kHz (the asterisk voices are 8 kHz recordings, upsampled)
[ -d "$DATA/voices16k" ] || $EDGESEP data real-voices "$DATA/voices16k" --sample-rate 16000 --seed 0
[ -d "$DATA/rooms16k" ] || $EDGESEP data rooms "$DATA/rooms16k" --n-rooms 400 --sample-rate 16000 --seed 0
mix16() { [ -d "$DATA/mix16k/$2" ] || $EDGESEP data mix "$DATA/$1" "$DATA/mix16k/$2" --sample-rate 16000 "${@:3}"; }
mix16 voices16k voices-valid --split valid --n 100 --seed 5
mix16 voices16k voices-test --split test --n 300 --seed 6
echo "speech data ready under $DATA/"
