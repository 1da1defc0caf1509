# s3imports: the two first commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: all venv moto-start moto-stop test lint fmt unit integration demo bench build release clean

all: test

# Python tools: moto (the local AWS emulator) and cfn-lint, pinned in requirements-dev.txt.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

moto-start: venv
	@scripts/moto.sh start

moto-stop:
	@scripts/moto.sh stop

fmt:
	$(CARGO) fmt --all

lint: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) scripts/check_schema.py

build:
	$(CARGO) build --workspace --bins --locked

# fmt check, clippy -D warnings, then every test (each integration-test binary
# starts its own moto server on a free port and stops it when it exits).
test: venv lint build
	$(CARGO) test --workspace --locked

release:
	$(CARGO) build --workspace --release --locked

# The whole import, end to end, against a local moto server: no AWS account needed.
demo: venv build
	scripts/demo.sh

bench: venv
	scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV) .moto
