# Two commands do everything on a fresh machine:
#   make benchmark   set up .venv, rerun the default benchmark (digits, embedded data) into results-reproduce/
#                    and compare every table cell with the committed records
#   make test        set up .venv and run the test suite (and the benchmarks, once each, untimed)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup benchmark test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

benchmark: setup
	$(BIN)/unlearnbench reproduce

test: setup
	$(BIN)/python -m pytest -q tests benchmarks --benchmark-disable

clean:
	rm -rf $(VENV) results/cache .pytest_cache
