# Set-up and the two main jobs. Needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REPS ?= 400
PARTICLES ?= 400

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,dashboard,ema]"
	touch $(VENV)/.installed $@

## demo: the main job: the baseline forecast from its assimilated history (every figure reported up to Jan 2026);
## prints the figures assimilated, AITO's deliveries and the target's probability
demo: $(VENV)/.installed
	$(BIN)/sim forecast scenarios/baseline.yaml --particles $(PARTICLES) --replications $(REPS) --out results/baseline --force

## test: the whole test suite
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -W error

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check sim tests benchmarks
	$(BIN)/mypy sim
	$(BIN)/lint-imports

## bench: the benchmarks of BENCHMARKS.md, their figures printed (several minutes, most of them the batch
## benchmark's 10,000 runs; `benchmarks/run_all.py --quick` checks in under a minute that they all run)
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
