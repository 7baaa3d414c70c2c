#!/usr/bin/env bash
# Copy the bundled demo example out of the unseen-real-speaker test set (built by
# scripts/make_speech_data.sh): a mixture of two held-out professional voices and its references.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-data/mix8k/real-test}
ID=asterisk-it_IT_m_Carlo_0050_0.4046_asterisk-fr_CA_f_June_0007_-0.4046
DST=src/edgesep/zoo/examples
mkdir -p "$DST"
cp "$SRC/mix/$ID.wav" "$DST/two_speakers_8k.wav"
cp "$SRC/s1/$ID.wav" "$DST/two_speakers_8k_s1.wav"
cp "$SRC/s2/$ID.wav" "$DST/two_speakers_8k_s2.wav"
echo "example written to $DST (mixture $ID)"
