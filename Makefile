# The README's two commands: `make serve` and `make test`.
#
# llama-cpp-python ships as an sdist and compiles llama.cpp (~12 min on 2 cores; pip caches
# the wheel afterwards). CMAKE_ARGS is passed through, e.g. `CMAKE_ARGS=-DGGML_CUDA=on make serve`;
# a non-empty CMAKE_ARGS bypasses pip's wheel cache so the CPU wheel is not reused for a GPU build.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
LLAMA_CPP_PYTHON := llama-cpp-python==0.3.36
export CMAKE_ARGS

.PHONY: serve test install install-test lint format clean vscode clients code-server quality-sources

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.llama-cpp: | $(PY)
	$(PIP) install $(if $(strip $(CMAKE_ARGS)),--no-cache-dir --force-reinstall --no-deps,) "$(LLAMA_CPP_PYTHON)"
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.llama-cpp
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

serve: install
	$(VENV)/bin/llamita serve

lint: install-test
	$(PY) -m ruff check server lsp prompts tests bench
	$(PY) -m ruff format --check server lsp prompts tests bench

format: install-test
	$(PY) -m ruff format server lsp prompts tests bench
	$(PY) -m ruff check --fix server lsp prompts tests bench

# The VS Code extension (Node >= 20): install from the lockfile, unit tests, then the .vsix.
vscode:
	cd vscode-client && npm ci --no-audit --no-fund && npm test && npm run package -- --out llamita.vsix

# The coding agents the tests drive (Claude Code, Codex CLI, opencode from npm; aider in its own
# venv): installed once from their lockfiles into gitignored caches (tests/clients/install.py).
# One that cannot be installed is reported here and its tests skip with npm's or pip's error.
clients: install-test
	$(PY) tests/clients/install.py

# code-server (VS Code in the browser, ~800 MB, its own Node 24 from npm) for tests/vscode_real: installed
# once from its lockfile into a gitignored cache. A failed install is recorded and fails that test.
code-server: install-test
	$(PY) tests/vscode_real/install.py

# The JS and Go trees bench/quality.py cuts holes from (pinned npm and Debian packages, into the
# gitignored bench/.sources/). Offline, `make test` goes on and the benchmark names the missing tree.
quality-sources: | $(PY)
	-$(PY) bench/quality_sources.py

test: install-test lint vscode clients code-server quality-sources
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
