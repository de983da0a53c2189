# cpaudit — two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8050
LEAK   ?=

.PHONY: demo test bench system-deps clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cpaudit needs Python 3.11 or newer")'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { sh scripts/install-system-deps.sh venv && $(PYTHON) -m venv $(VENV); }

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

## the demo campaign: simulated brewery + collector + web on the embedded store (Ctrl-C stops all)
demo: $(VENV)/.installed
	@sh scripts/install-system-deps.sh demo
	$(BIN)/cpaudit demo --port $(PORT) $(if $(LEAK),--leak $(LEAK))

## the whole test suite, against real servers the project installs and starts itself;
## lint (ruff: pyflakes rules) and type check (mypy) first
test: $(VENV)/.installed system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

## benchmarks: figures and ratios to baselines measured in the same run
bench: $(VENV)/.installed
	@sh scripts/install-system-deps.sh bench
	$(BIN)/python -m bench $(SECTIONS)

system-deps:
	@sh scripts/install-system-deps.sh

clean:
	rm -rf $(VENV) var test-output *.egg-info
