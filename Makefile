# Two commands do everything on a fresh machine:
#   make benchmark   set up .venv, rerun the default benchmark (digits, embedded data) into results-reproduce/
#                    and compare every table cell with the committed records
#   make test        set up .venv, lint (ruff), run the test suite (and the benchmarks, once each, untimed)
#   make test-fast   the same without the tests marked slow or slurm (a developer's loop, a few minutes)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup benchmark lint test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

benchmark: setup
	$(BIN)/unlearnbench reproduce

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q tests benchmarks --benchmark-disable

test-fast: lint
	$(BIN)/python -m pytest -q tests -m "not slow and not slurm"

clean:
	rm -rf $(VENV) results/cache .pytest_cache
