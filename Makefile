# The two commands a user needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint unit bench lock clean validation

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

test: venv lint
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
