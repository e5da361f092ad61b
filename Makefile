# handlab: `make report` and `make test` work on a fresh machine (each runs `setup` first).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.handlab-setup
# Pinned here (pyproject keeps ranges): these lie on local disk on the project's machines.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
JOBS ?= 2

.PHONY: setup test lint report report-full lab figures bench check-html clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[dev]" $(TORCH_PINS)
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint
	$(VENV)/bin/pytest -n $(JOBS) --dist loadgroup

# The main job: every chapter executed by papermill on the embedded synthetic data and the
# shipped models, rendered to HTML, indexed in reports/index.html.
report: setup
	$(PY) -m handlab.cli report --out reports

# The repository's Jupyter settings (.jupyter/labconfig: `.py` chapters open as notebooks) are
# added to the user's with JUPYTER_CONFIG_PATH; root (containers) needs --allow-root.
LAB_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(VENV)/bin/jupyter lab $(LAB_ROOT_FLAG) notebooks

figures: setup
	$(PY) -m handlab.cli figures --out figures

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Renders reports/index.html and a chapter in headless Chromium (Debian's chromium package).
check-html: setup
	$(PY) -m handlab.report_check reports

clean:
	rm -rf build reports .pytest_cache .ruff_cache
