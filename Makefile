# `make run` and `make test` are all a fresh clone needs: each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := $(VENV)/.compiled

.PHONY: run test results clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Once per set-up: `ddpm-tui compile` builds the GroupNorm kernel where the CPU computes in bf16 (seconds; there
# the eager network is as fast as a compiled one), and elsewhere compiles the default network for sampling (under
# a minute), so that long sampling runs (the guide's Phase 3 first) start fast. Where neither can be built,
# sampling runs the network as it is.
$(COMPILED): $(STAMP)
	$(BIN)/ddpm-tui compile || true
	touch $(COMPILED)

run: $(COMPILED)
	$(BIN)/ddpm-tui

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/render_results.py --check
	$(BIN)/python -m pytest

# The README's headline figures, measured here (about an hour on 2 cores), then its tables rendered.
results: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/headline.py
	$(BIN)/python scripts/render_results.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
