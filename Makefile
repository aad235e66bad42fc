# Every target installs what it needs: a machine with python3 and make is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install test lint types unit demo sandbox bench bench-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check ldbulk tests

types: $(STAMP)
	$(BIN)/mypy --strict ldbulk

unit: $(STAMP)
	$(BIN)/pytest --cov=ldbulk --cov-report=term

test: lint types unit

demo: $(STAMP)
	$(BIN)/python -m ldbulk.demo manifests/example.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
