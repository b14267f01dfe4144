# fontgen: `make test` and `make demo` set themselves up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fontgen-installed
WORKDIR ?= fontgen-work
# torch/torchvision pinned to the builds this project is tested with (they install from local disk here).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: setup test demo bench gpu-check clean

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

# On a machine with a CUDA GPU: the CUDA paths (bf16, channels_last, compile, pinned prefetch) on
# real data, then every benchmark including the GPU rows.
gpu-check: $(STAMP)
	$(BIN)/fontgen --workdir $(WORKDIR)-gpu render
	$(BIN)/fontgen --workdir $(WORKDIR)-gpu train --device cuda --preset full --steps 200 --perceptual-weight 0 --sample-every 100
	$(BIN)/fontgen --workdir $(WORKDIR)-gpu train --device cuda --preset full --steps 300 --resume --compile --perceptual-weight 0
	$(BIN)/fontgen --workdir $(WORKDIR)-gpu generate --style 12 --device cuda
	$(BIN)/fontgen --workdir $(WORKDIR)-gpu evaluate --device cuda
	$(BIN)/python benchmarks/run_all.py --out docs/benchmarks.md

clean:
	rm -rf $(WORKDIR) .pytest_cache
