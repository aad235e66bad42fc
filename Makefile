# Every target installs what it needs: a machine with python3 and make is enough.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install compiled test lint hygiene types unit coverage demo bench bench-smoke clean redis docs

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,check]'
	touch $(STAMP)

# The GitHub Action and the example workflow against GitHub's published schemas (vendored by
# check-jsonschema: no network).
lint: $(STAMP) hygiene
	$(BIN)/ruff check ldbulk tests bench examples
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows examples/github/*.yml

# Every tracked text file: no merge-conflict marker (ruff, mypy and the tests all pass over one
# left in a docstring), no trailing whitespace, a final newline. Outside a git checkout there
# is no list of tracked files, and nothing to check.
hygiene:
	@if ! git rev-parse --git-dir >/dev/null 2>&1; then echo "hygiene: not a git checkout, skipped"; exit 0; fi; \
	status=0; \
	if git grep -nIE '^(<<<<<<<|>>>>>>>)( |$$)|^=======$$'; then echo "hygiene: merge-conflict marker(s) above"; status=1; fi; \
	if git grep -nIE '[[:blank:]]+$$'; then echo "hygiene: trailing whitespace above"; status=1; fi; \
	for file in $$(git grep -IlE '.'); do \
	  if [ -n "$$(tail -c1 "$$file")" ]; then echo "$$file"; missing=1; fi; \
	done; \
	if [ -n "$$missing" ]; then echo "hygiene: no final newline in the file(s) above"; status=1; fi; \
	exit $$status

types: $(STAMP)
	$(BIN)/mypy --strict ldbulk

# The store check's tests run a real redis-server (the Debian package): installed when missing.
redis:
	@command -v redis-server >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq redis-server; }

# The package's bytecode, written ahead: the tests and the benchmarks start hundreds of
# `python -m ldbulk` processes, and where PYTHONDONTWRITEBYTECODE is set (as in many CI
# images) each would compile the whole package again (0.5 s of CPU a process).
compiled: $(STAMP)
	$(BIN)/python -m compileall -q ldbulk bench

# Two workers: most tests wait on loopback sockets and subprocesses, not on a core.
unit: $(STAMP) redis compiled
	$(BIN)/pytest -n 2

# The suite again under coverage (half as long again as `unit`: every command-line subprocess
# is measured too). The command line's subprocesses write coverage files of their own; one
# that ends after the workers' data were combined is added before the report.
coverage: $(STAMP) redis compiled
	$(BIN)/pytest -n 2 --cov=ldbulk --cov-report=
	if ls .coverage.* >/dev/null 2>&1; then $(BIN)/coverage combine --append --quiet; fi
	$(BIN)/coverage report

# bench-smoke before unit, so the test summary is the last thing printed.
test: lint types bench-smoke unit

# The benchmarks of README's table (~35 min, most of it the grid): bench/results.md and .json.
bench: $(STAMP) compiled
	$(BIN)/python -m bench

# A tiny run of every scenario (~20 s) that keeps the harness working; asserts no timings.
bench-smoke: $(STAMP) compiled
	$(BIN)/python -m bench --smoke

# The API reference from the docstrings, into site/; a warning (a broken reference, a
# docstring mkdocstrings cannot read) fails the build. Installs the docs extra first.
DOCS_STAMP = $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict

# The demo needs the runtime and the check extra (it runs `ldbulk check` when redis-server is
# there), not the test and bench tools: a fresh venv of about 105 MB, not 570. After `make
# install` it uses that venv as it is.
DEMO_STAMP = $(VENV)/.demo-installed

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -f $(STAMP) || $(BIN)/python -m pip install --quiet -e '.[check]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m ldbulk.demo manifests/example.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage site
