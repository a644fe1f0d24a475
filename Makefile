# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: venv demo test bench clean

$(BIN)/deepprior: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# Prefer a torch wheel that is already on local disk (CPU build, offline machines): without
	@# this, pip would fetch the multi-GB CUDA build from PyPI. Elsewhere the second line installs
	@# torch from PyPI as usual.
	$(BIN)/python -m pip install -q --no-index --no-deps torch 2>/dev/null || true
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/deepprior

demo: venv
	$(BIN)/deepprior demo --overwrite

test: venv
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python bench/natural.py

clean:
	rm -rf $(VENV) deepprior-demo .pytest_cache
