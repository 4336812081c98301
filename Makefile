# Two commands on a fresh machine: `make repro` (toy pipeline) and `make test` (unit tests + notebooks).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
TORCH_CPU := torch==2.13.0
# Nothing may reach a model or dataset hub in the toy profile or the tests.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export PATH := $(abspath $(VENV))/bin:$(PATH)
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_HOLD := $(if $(HAS_GPU),,$(TORCH_CPU))

.PHONY: install repro test unit notebooks lint bench lab clean toy-detectors

install: $(STAMP)

# CPU machines get torch 2.13.0 (CPU build) first and keep it; GPU machines take torch from the extras.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(if $(TORCH_HOLD),$(PY) -m pip install -q $(TORCH_HOLD),)
	$(PY) -m pip install -q -e ".[dev]" $(TORCH_HOLD)
	@touch $@

repro: $(STAMP)
	dvc repro

test: $(STAMP) lint unit notebooks

lint: $(STAMP)
	ruff check valor_lib tests notebooks

unit: $(STAMP)
	$(PY) -m pytest tests -n 2 -m "not gpu and not benchmark" --timeout 900

# nbval executes every notebook in number order; each finds what the earlier ones wrote.
notebooks: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks -p no:randomly --timeout 1800

bench: $(STAMP)
	$(PY) -m pytest tests/benchmarks -m benchmark -s

# The committed pretrained toy detectors (data/pretrained/toy-detector): rebuild after changing their recipe in
# params.yaml or the pretraining code; about 28 min for three seeds on two cores.
toy-detectors: $(STAMP)
	$(PY) -m valor_lib.toyworld.detector_asset --seeds $(or $(SEEDS),0 1 2) --workers $(or $(WORKERS),3)

lab: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,lab]" $(TORCH_HOLD)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks

clean:
	rm -rf data/toy .pytest_cache
	git clean -fdqX results  # stage outputs; the committed metrics stay
