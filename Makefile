# The two commands a user needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint unit bench lock clean pg-server

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/aseptic demo --out aseptic-demo

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy --strict src

unit: venv
	$(BIN)/pytest -q tests/unit

# Debian's PostgreSQL server binaries, for the ledger tests that run on PostgreSQL (tests/pg_support.py
# starts a throwaway server on 127.0.0.1); installed non-interactively when missing.
pg-server:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  command -v apt-get >/dev/null || { echo "pg-server: no apt-get; install PostgreSQL >= 13 server binaries" >&2; exit 1; }; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; }

test: venv lint pg-server
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python -m benchmarks.run_all

# Regenerate the pinned versions after changing dependency ranges in pyproject.toml.
lock: venv
	$(BIN)/python -m pip freeze --exclude-editable --exclude aseptic > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
