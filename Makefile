# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install test test-fast test-gpu demo clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1 -r requirements.txt
	$(PIP) install --quiet --no-deps --no-build-isolation --editable .
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q --durations=25 tests

test-fast: install  # the suite without the tests marked slow: a few minutes, for the edit-test loop
	$(PY) -m pytest -q -m "not slow" tests

test-gpu: install  # the GPU path only (tests marked cuda), with the memory figures printed
	$(PY) -m pytest -q -s -m cuda tests

demo: install
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) .pytest_cache
