# Two entry points: `make demo` (set up, then run the main job on the embedded demo corpus)
# and `make test` (set up, then run the test suite). Both create .venv if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: setup test demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# CPU build of torch (a plain `torch` would pull a multi-GB CUDA build).
	$(PIP) install -q torch==2.13.0
	# DeepSpeed's setup.py imports torch; build isolation would fetch a second (CUDA) torch.
	$(PIP) install -q --no-build-isolation "deepspeed>=0.16"
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m data_prep source=demo out_dir=$(DEMO_DIR)/data split.val_fraction=0.05

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs outputs multirun .pytest_cache
