# funnelguard: `make demo` runs the nightly job on the embedded default; `make test` runs the tests.
# Both create .venv and install the pinned dependencies (requirements.lock) on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: install browser demo test test-fast bench lint airflow clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build on this disk, never a multi-GB CUDA download.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m funnelguard.demo

# Debian's Chromium and its driver, for the results site's browser test (tests/site).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null) || \
	  echo "warning: could not install chromium; the browser test will skip"

# Two workers (these machines have 2 cores; much of the suite waits on Airflow, Spark and
# PostgreSQL), one test file per worker so session fixtures stay shared within a file.
TEST_WORKERS ?= 2

test: install browser
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=25 tests

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .

airflow: install
	bash scripts/airflow-standalone.sh

clean:
	rm -rf $(VENV) .funnelguard build *.egg-info
