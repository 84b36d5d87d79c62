# Regiozorg: `make run` starts everything locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock | cksum | cut -d' ' -f1)

.PHONY: install chromium run test bench soak chaos clean

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# RUN_ARGS="--instances 2": two processes of every service (the first on 8001-8003, the others on free ports).
run: install
	$(BIN)/python -m infra.run $(RUN_ARGS)

# Debian's Chromium for the browser tests, installed when missing (Playwright never downloads a browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "make test needs Debian's chromium for the browser tests: run 'apt-get install chromium' as root" \
	         "(or run make test as root, which installs it)" >&2; \
	    exit 1; \
	  fi; }

# Fails when anything is skipped. PostgreSQL: REGIOZORG_TEST_POSTGRES_URL, a container when Docker answers,
# the local server (REGIOZORG_TEST_POSTGRES_LOCAL, default 127.0.0.1:5432) or else an embedded one.
test: install chromium
	$(BIN)/ruff check shared services infra tests
	$(BIN)/python -m pytest -q --durations=15

# Not part of `make test`: the real stack under load (a few minutes); writes bench-report.json/.png.
# BENCH_ARGS="--instances 2" measures two processes of every service; the report prints issue #17's targets.
bench: install
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

# Issue #17's "no growth across a 10,000-request run": SOAK requests through the whole flow at SOAK_RATE/s on
# PostgreSQL (10,000 at 10/s: about 17 minutes, plus a minute to start), the RSS of every service process sampled
# every 5 s; idle, warm-up (first 10 %), end, growth and the trend of the last half go into bench-report.json's
# "soak" section (the other phases' figures are kept) and bench-report-soak.png. Run it on a quiet machine.
SOAK ?= 10000
SOAK_RATE ?= 10
soak: install
	$(BIN)/python -m tests.bench --soak $(SOAK) --soak-rate $(SOAK_RATE) $(BENCH_ARGS)

# Every fault (kill -9 of each service and of the broker, PostgreSQL refusing, poison records) under load,
# then nothing lost or duplicated; then kill -9 of one of two coordination instances on a stack with two
# instances of every service; a short version of each case is part of `make test`.
chaos: install
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf .regiozorg .pytest_cache test-artifacts
