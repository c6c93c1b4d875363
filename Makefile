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
	$(PY) -m train experiment=demo run_dir=$(DEMO_DIR)/pretrain task.data_dir=$(DEMO_DIR)/data
	$(PY) -m train experiment=demo_finetune run_dir=$(DEMO_DIR)/finetune task.data_dir=$(DEMO_DIR)/data \
	    task.init_from=$(DEMO_DIR)/pretrain/checkpoints/last.ckpt
	$(PY) -m eval task=perplexity checkpoint=$(DEMO_DIR)/pretrain/checkpoints/last.ckpt \
	    task.data_dir=$(DEMO_DIR)/data task.block_size=128 out_dir=$(DEMO_DIR)/eval/perplexity
	@# held-out demo QA test split (data_prep writes it): fine-tuned, then pretrained for before/after.
	@# Greedy generation + BioGPT's answer extraction, as BioGPT evaluates (likelihood mode sums
	@# log-probs over answers of different token lengths; see docs/eval.md). The answer prefix alone
	@# is 17 demo tokens, hence max_new_tokens=24.
	$(PY) -m eval task=pubmedqa checkpoint=$(DEMO_DIR)/finetune/checkpoints/last.ckpt \
	    task.mode=generate generation.max_new_tokens=24 task.bench_dir=$(DEMO_DIR)/data/cache/demo_pubmedqa \
	    task.files.gold=test_ground_truth.json task.files.test=pqal_test_set.json \
	    out_dir=$(DEMO_DIR)/eval/pubmedqa
	$(PY) -m eval task=pubmedqa checkpoint=$(DEMO_DIR)/pretrain/checkpoints/last.ckpt \
	    task.mode=generate generation.max_new_tokens=24 task.bench_dir=$(DEMO_DIR)/data/cache/demo_pubmedqa \
	    task.files.gold=test_ground_truth.json task.files.test=pqal_test_set.json \
	    out_dir=$(DEMO_DIR)/eval/pubmedqa_pretrained
	$(PY) -m train.report --data $(DEMO_DIR)/data --pretrain $(DEMO_DIR)/pretrain \
	    --finetune $(DEMO_DIR)/finetune --eval $(DEMO_DIR)/eval --out $(DEMO_DIR)/report.md \
	    --qa-dir $(DEMO_DIR)/data/cache/demo_pubmedqa  # the keyword-rule baseline beside the QA accuracy

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs outputs multirun .pytest_cache
