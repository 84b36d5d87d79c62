# Regiozorg: `make run` starts everything locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock | cksum | cut -d' ' -f1)

.PHONY: install run test bench chaos clean

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m infra.run

test: install
	$(BIN)/ruff check shared services infra tests
	$(BIN)/python -m pytest -q

# Not part of `make test`: the real stack under load (a few minutes); writes bench-report.json/.png.
bench: install
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

# Every fault (kill -9 of each service and of the broker, PostgreSQL refusing, poison records) under load,
# then nothing lost or duplicated; a short version of each case is part of `make test`.
chaos: install
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf .regiozorg .pytest_cache test-artifacts
