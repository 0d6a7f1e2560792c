# calmesh: the two commands a new user runs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast soak lint bench bench-tools browser interop clean

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

# Debian packages of the real EWS clients tests/interop/test_ews_clients.py drives (evolution-ews
# through evolution-data-server's introspection API, DavMail in EWS mode); `make interop` installs
# them with apt-get as root, and the tests skip saying so where they are absent.
INTEROP_EWS_PKGS := evolution-ews evolution-data-server gir1.2-ecal-2.0 gir1.2-edataserver-1.2 python3-gi dbus davmail

# Debian's Chromium for the browser tests (Playwright drives it; it cannot download its own here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "no /usr/bin/chromium and no root apt-get: browser tests will be skipped"; fi; \
	fi

# The real client programs and parsers of tests/interop, from Debian (as root with apt-get) and npm,
# plus the `interop` Python extra. Never fails: what cannot be installed is said here, and the tests
# needing it skip saying so. From a clean machine the Debian packages take about 2.5 minutes
# (about 100 MB to fetch: Thunderbird is most of it); once installed this target takes seconds.
INTEROP_DEBS := thunderbird evolution-data-server gir1.2-ecal-2.0 gir1.2-edataserver-1.2 gir1.2-ical-3.0 \
	python3-gi dbus-daemon
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends

interop: $(STAMP)
	@$(BIN)/pip install -q -e '.[dev,interop]' >$(VENV)/interop-pip.log 2>&1 \
	  || echo "interop: the interop extra (marionette-driver, vobject) could not be installed: those tests will be skipped"
	@missing=""; for p in $(INTEROP_DEBS) $(INTEROP_EWS_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "interop: installing$$missing"; \
	  apt-get update -qq >/dev/null 2>&1 || echo "interop: apt-get update failed"; \
	  $(APT_INSTALL) $$missing >/dev/null 2>&1 || for p in $$missing; do \
	    $(APT_INSTALL) $$p >/dev/null 2>&1 || echo "interop: $$p could not be installed: the tests needing it will be skipped"; \
	  done; \
	else echo "interop: missing$$missing and no root apt-get: the tests needing them will be skipped"; fi
	@if command -v npm >/dev/null; then \
	  [ -f $(VENV)/node/node_modules/ical.js/package.json ] || npm install -s --prefix $(VENV)/node --no-audit --no-fund ical.js@2 \
	    || echo "interop: ical.js could not be installed with npm: its test will be skipped"; \
	else echo "interop: no npm: the ical.js test will be skipped"; fi

# PORT: where the demo hub listens (default 8765), e.g. `make demo PORT=9000`.
PORT ?= 8765
demo: $(DEMO_STAMP)
	$(BIN)/calmesh demo --port $(PORT)

test: $(STAMP) browser interop lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow and not browser"

# The agency test (tests/agency) on fresh examples for SOAK_SECONDS (default 30 minutes), after
# replaying the failures kept in tests/agency/examples; a new failure is saved there: commit it.
# (CI runs the fixed sequences of tests/agency/test_agency_regressions.py.) A fixed hash seed, so
# that a failure saved here replays the same walk in the next process (with tests/agency/ids.py).
SOAK_SECONDS ?= 1800
soak: $(STAMP)
	PYTHONHASHSEED=0 SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest tests/agency -m "soak or slow" -p no:cacheprovider \
	  -o timeout=$$(( $(SOAK_SECONDS) + 600 )) -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy src

# The profilers (py-spy, pyinstrument) and wrk, the load generator of bench/warm_wrk.py.
bench-tools: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	      || echo "wrk could not be installed: bench/warm_wrk.py will say so"; \
	  else echo "no wrk and no root apt-get: bench/warm_wrk.py will say so"; fi; \
	fi

bench: bench-tools
	$(BIN)/python bench/freebusy.py
	$(BIN)/python bench/warm_wrk.py
	$(BIN)/python bench/overlaps.py
	$(BIN)/python bench/sync_vs_vdirsyncer.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
