# edgesep: `make demo` and `make test` bootstrap .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Shared 2-core machines: busy-waiting OpenMP threads collapse under contention.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test test-all lint data train bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to 2.13.0 in pyproject.toml: the CPU wheel, no CUDA downloads
	$(BIN)/python -m pip install -q -e '.[dev]'
	# music synthesis: tinysoundfont without its playback dependency (pyaudio needs PortAudio)
	$(BIN)/python -m pip install -q --no-deps 'tinysoundfont>=0.3'
	touch $@

demo: $(STAMP)
	$(BIN)/edgesep demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

# Speech data and the bundled model's training run (see docs/TRAINING.md).
data: $(STAMP)
	bash scripts/make_speech_data.sh

train: data
	$(BIN)/edgesep train configs/train/convtasnet-tiny-8k.yaml

# The benchmark of the bundled models: out/bench/bundled/ and docs/BENCHMARKS.md (docs/bench/).
bench: data
	$(BIN)/edgesep bench configs/bench/bundled.yaml --docs docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache out
