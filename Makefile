# calmesh: the two commands a new user runs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast soak lint bench browser clean

# `make demo` installs calmesh and the demo's CalDAV server only; `make test` adds the dev tools.
DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

venv: $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; it cannot download its own here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "no /usr/bin/chromium and no root apt-get: browser tests will be skipped"; fi; \
	fi

# PORT: where the demo hub listens (default 8765), e.g. `make demo PORT=9000`.
PORT ?= 8765
demo: $(DEMO_STAMP)
	$(BIN)/calmesh demo --port $(PORT)

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow and not browser"

# The agency test (tests/agency) on fresh examples for SOAK_SECONDS (default 30 minutes), after
# replaying the failures kept in tests/agency/examples; a new failure is saved there: commit it.
# (CI runs the fixed sequences of tests/agency/test_agency_regressions.py.)
SOAK_SECONDS ?= 1800
soak: $(STAMP)
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest tests/agency -m "soak or slow" -p no:cacheprovider \
	  -o timeout=$$(( $(SOAK_SECONDS) + 600 )) -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy src

bench: $(STAMP)
	$(BIN)/python bench/freebusy.py
	$(BIN)/python bench/overlaps.py
	$(BIN)/python bench/sync_vs_vdirsyncer.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
