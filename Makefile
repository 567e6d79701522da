# Every target creates the environment when it is missing (.venv, package installed editable).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXP_ARGS ?=

.PHONY: setup test test-slow mutation lint docs pinwheel circles circles-semi mnist paper bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev,experiments,bench,docs]'
	touch $(STAMP)

setup: $(STAMP)

# XLA's older CPU code path compiles these tiny test programs about twice as fast
test: $(STAMP)
	XLA_FLAGS="--xla_cpu_use_fusion_emitters=false $$XLA_FLAGS" $(BIN)/pytest -q -n 2

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

# the documentation site into site/ (offline; any warning fails the build)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Mutation testing (mutmut, on request, not in CI): one module at a time against its fast tests;
# scores and surviving mutants in results/mutation/. MODULES=estimator ... picks modules,
# MUTATION_ARGS="--children 2 --timeout 1800" sets workers and the time limit per module.
MODULES ?=
MUTATION_ARGS ?=
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py $(MODULES) $(MUTATION_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests experiments benchmarks studies examples tools

pinwheel: $(STAMP)
	$(BIN)/python experiments/pinwheel.py $(EXP_ARGS)

circles: $(STAMP)
	$(BIN)/python experiments/circles.py $(EXP_ARGS)

circles-semi: $(STAMP)
	$(BIN)/python experiments/circles_semi.py $(EXP_ARGS)

mnist: $(STAMP)
	$(BIN)/python experiments/mnist.py $(EXP_ARGS)

paper: $(STAMP)
	$(BIN)/python experiments/paper.py $(EXP_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/scaling.py

clean:
	rm -rf $(VENV) results site .pytest_cache
