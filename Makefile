# exalb: the two commands a person needs are `make demo` and `make test`.
# Every target installs what it needs, idempotently, so both work on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo nodes setup venv routers nodepkgs kubebin promtool image lint typecheck unit integration bench clean

test: setup lint typecheck
	$(BIN)/pytest

demo: setup
	$(BIN)/python -m testbed.demo

# A test bed of real kubelet nodes to explore (kubectl, helm); Ctrl-C tears it down.
nodes: setup
	$(BIN)/python -m testbed.nodes

setup: venv routers nodepkgs kubebin promtool image

venv: $(STAMP)
$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is required"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

routers:
	bash tools/install-routers.sh

nodepkgs:
	bash tools/install-nodes.sh

kubebin:
	bash tools/kubebin/build.sh

# Prometheus's promtool, for `promtool check rules` and `promtool test rules` (tests/chart).
promtool:
	bash tools/promtool/build.sh

# The exalb image and the nodes' pause image, as OCI archives in .build/.
image: venv nodepkgs kubebin
	bash tools/image/build.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest -m integration

bench: setup
	$(BIN)/python -m bench.allocator_bench
	$(BIN)/python -m bench.announcer_bench
	$(BIN)/python -m bench.scale_bench

clean:
	rm -rf $(VENV) .bin .build .pytest_cache .mypy_cache .ruff_cache
