# Two entry points (README): `make demo` and `make test`. Both build .venv from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# One pytest worker per core (pytest-xdist); tests sharing a trained run stay on one worker (tests/conftest.py).
XDIST ?= -n auto --dist loadgroup
# Model code must run on both Keras backends: these test folders run a second time under JAX.
JAX_TESTS ?= tests/layers tests/encoders tests/models tests/jax

.PHONY: demo test test-tf test-jax install install-dev wheel clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.base
install-dev: $(VENV)/.dev

demo: $(VENV)/.base
	$(VENV)/bin/mmkeras demo

test: $(VENV)/.dev
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)
	KERAS_BACKEND=jax $(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS) $(wildcard $(JAX_TESTS))

test-tf: $(VENV)/.dev
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-jax: $(VENV)/.dev
	KERAS_BACKEND=jax $(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS) $(wildcard $(JAX_TESTS))

# The wheel the Colab notebooks install (their first cell): the package with its bundled configs and datasets.
# Building it needs only pip (which fetches the build backend), not the dependencies .venv/.base installs.
wheel:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) runs exports data .pytest_cache
