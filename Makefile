# The two commands a user needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint unit bench lock clean validation system-deps

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

# System packages the tests need, from Debian's archive (never downloaded from elsewhere):
# chromium for the dashboard's browser tests (Playwright drives it; no browser download);
# postgresql for the ledger tests on PostgreSQL (tests/pg_support.py starts a throwaway server);
# softhsm2 for the PKCS#11 key-store tests (a throwaway SoftHSM token per test session);
# libnss3-tools (certutil): the browser tests trust the site CA in a throwaway NSS database.
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v certutil >/dev/null 2>&1 || missing="$$missing libnss3-tools"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -f /usr/lib/softhsm/libsofthsm2.so || missing="$$missing softhsm2"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (apt-get install$$missing)" >&2; exit 2; fi; \
	fi

test: venv lint system-deps
	$(BIN)/pytest -q

# The validation pack: run the suite recording requirement ids and outcomes, then the trace matrix.
validation: venv
	-$(BIN)/pytest -q --validation-record=validation-record.json
	$(BIN)/aseptic validation report --results validation-record.json --out validation-pack

bench: venv
	$(BIN)/python -m benchmarks.run_all

# Regenerate the pinned versions after changing dependency ranges in pyproject.toml.
lock: venv
	$(BIN)/python -m pip freeze --exclude-editable --exclude aseptic > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
