#!/usr/bin/env bash
# Copy the bundled demo example out of the unseen-real-speaker test set (built by
# scripts/make_speech_data.sh): a mixture of two held-out professional voices and its references.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-data/mix8k/real-test}
# The June + Carlo mixture whose SI-SNRi with the bundled model (1.18 dB) is closest to the
# median of the whole unseen-real-speaker test set (1.19 dB): a typical case, not a best one.
ID=asterisk-it_IT_m_Carlo_0025_0.9906_asterisk-fr_CA_f_June_0011_-0.9906
DST=src/edgesep/zoo/examples
mkdir -p "$DST"
cp "$SRC/mix/$ID.wav" "$DST/two_speakers_8k.wav"
cp "$SRC/s1/$ID.wav" "$DST/two_speakers_8k_s1.wav"
cp "$SRC/s2/$ID.wav" "$DST/two_speakers_8k_s2.wav"
echo "example written to $DST (mixture $ID)"
