# The README's two commands: `make demo` and `make test`. Each creates .venv (pinned torch/torchvision from
# constraints.txt, editable install with the dev extra) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint perf docs

$(STAMP): setup.cfg constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps imagenet_c==0.0.3  # Hendrycks' ImageNet-C code, the tests' reference
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/robustbench eval --model embedded-simclr-tinyresnet --out runs/demo
	$(BIN)/robustbench eval --model embedded-random-tinyresnet --out runs/demo-random
	rm -rf runs/leaderboard
	$(BIN)/robustbench submit runs/demo --to runs/leaderboard
	$(BIN)/robustbench submit runs/demo-random --to runs/leaderboard
	$(BIN)/robustbench leaderboard show --store runs/leaderboard

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check ssl_robustbench tests perf

PEERS := .perf-peers

$(PEERS)/.installed: perf/requirements-peers.txt $(STAMP)
	$(BIN)/pip install --quiet --no-deps --target $(PEERS) -r perf/requirements-peers.txt
	touch $@

perf: $(STAMP) $(PEERS)/.installed
	$(BIN)/python perf/eval_throughput.py
	$(BIN)/python perf/data_path.py
	$(BIN)/python perf/attack_throughput.py
	$(BIN)/python perf/corruption_throughput.py --peers $(PEERS)
	$(BIN)/python perf/corruption_agreement.py
	$(BIN)/python perf/shift_eval_throughput.py --memory
	$(BIN)/python perf/pretrain_throughput.py
	$(BIN)/python perf/gpu.py
	$(BIN)/python perf/knn_memory.py
	$(BIN)/python perf/geometric_boxes.py
	$(BIN)/python perf/autoattack_agreement.py
