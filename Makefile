# Two commands do everything on a fresh machine with only Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test test-faults test-browser lint bench bench-ingest bench-profile bench-scoring bench-kpis bench-pipeline clean

# requirements-dev.lock includes the runtime lock (requirements.lock) and adds test and lint tools; the image installs
# the runtime lock only.
$(INSTALLED): pyproject.toml requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(BIN)/retain run

# pytest exits 5 when it collected no test: that is our failure, never a silent pass.
test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/faults; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# Fault injection against the whole platform as processes (kill -9, PostgreSQL and broker restarts, Ctrl-C, SIGKILL
# of retain run): minutes, not seconds, so apart from `make test`; CI runs both.
test-faults: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/faults; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# Not part of `make test`: needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver).
# Screenshots land in .data/screenshots/.
test-browser: install
	$(BIN)/python -m pytest -q -p no:cacheprovider browser_tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs services retain_cli bench tests browser_tests
	$(BIN)/lint-imports

bench: bench-ingest bench-profile bench-scoring bench-kpis

bench-ingest: install
	$(BIN)/python -m bench.bench_ingest $(ARGS)

bench-profile: install
	$(BIN)/python -m bench.bench_profile

bench-scoring: install
	$(BIN)/python -m bench.bench_scoring

# The whole pipeline against ingest: CDNOW catch-up, then a steady 1,000 events/s for 60 s.
bench-pipeline: install
	$(BIN)/python -u -m bench.bench_pipeline $(ARGS)

# 1M customers and 10M purchases by default; `make bench-kpis ARGS="--customers 100000 --purchases 1000000"`.
bench-kpis: install
	$(BIN)/python -u -m bench.bench_kpis $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
