# k3py — two commands on a fresh machine:
#   make run    install what is needed and start a single-node server
#   make test   install what is needed and run the whole suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= /var/lib/k3py
# containerd/runc run pods; nftables for hostPorts, masquerade and services; busybox-static
# builds the built-in pause image and the test images; docker-registry + apache2-utils
# (htpasswd) serve the e2e tests' local registry; iproute2 for test namespaces.
DEB_PACKAGES ?= containerd runc nftables busybox-static docker-registry apache2-utils iproute2 util-linux

.PHONY: all install deps proto run test test-unit test-api test-control test-e2e lint typecheck bench clean

all: install

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { apt-get update && apt-get install -y python3 python3-venv; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) deps

# Debian packages the suite needs (we are root on these machines).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi
	@command -v kubectl >/dev/null || { echo "kubectl is needed for tests/api"; exit 1; }

run: install
	$(BIN)/k3py server --data-dir $(DATA_DIR)

test: install lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-api: install
	$(BIN)/python -m pytest -q tests/api

test-control: install
	$(BIN)/python -m pytest -q tests/control

test-e2e: install
	$(BIN)/python -m pytest -q tests/e2e

lint: install
	$(BIN)/ruff check k3py tests bench

typecheck: install
	$(BIN)/mypy k3py

bench: install
	$(BIN)/python -m bench.bench_datastore
	$(BIN)/python -m bench.bench_api
	$(BIN)/python -m bench.bench_scheduler --nodes 1000 --pods 5000 --pending-first
	$(BIN)/python -m bench.bench_deployment --replicas 1000 --nodes 100
	$(BIN)/python -m bench.bench_nodes idle --nodes 1000 --seconds 300
	$(BIN)/python -m bench.bench_nodes loss --timings short
	$(BIN)/python -m bench.bench_pods --pods 30 --execs 20

# The CRI stubs are generated from our own k3py/agent/cri/api.proto and committed.
proto: install
	cd k3py/agent/cri && ../../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. api.proto
	sed -i 's/^import api_pb2 as api__pb2/from k3py.agent.cri import api_pb2 as api__pb2/' k3py/agent/cri/api_pb2_grpc.py

clean:
	rm -rf $(VENV) build *.egg-info
