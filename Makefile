# fontgen: `make test` and `make demo` set themselves up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fontgen-installed
WORKDIR ?= fontgen-work
# torch/torchvision pinned to the builds this project is tested with (they install from local disk here).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/fontgen --workdir $(WORKDIR) render
	$(BIN)/fontgen --workdir $(WORKDIR) train
	$(BIN)/fontgen --workdir $(WORKDIR) generate --style 12
	$(BIN)/fontgen --workdir $(WORKDIR) vectorize
	$(BIN)/fontgen --workdir $(WORKDIR) evaluate

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --out docs/benchmarks.md

clean:
	rm -rf $(WORKDIR) .pytest_cache
