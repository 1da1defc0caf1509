# s3imports: the two first commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: all browser screenshots console machete deny deny-advisories venv sam-venv sam-validate sam-build moto-start moto-stop test strict-test least-privilege lint fmt demo bench fuzz build release clean

all: test

# Python tools: moto (the local AWS emulator) and cfn-lint, pinned in requirements-dev.txt.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# The SAM CLI and cargo-lambda, in their own venv.
SAM_VENV := .venv-sam
sam-venv: $(SAM_VENV)/.installed
$(SAM_VENV)/.installed: requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

sam-validate: sam-venv
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint

# The deployable artifact: the three functions for arm64 with cargo-lambda (its zig
# links for arm64, so no Docker), then a check that each is an arm64 executable.
sam-build: sam-venv
	rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build
	python3 scripts/check_artifacts.py

moto-start: venv
	@scripts/moto.sh start

moto-stop:
	@scripts/moto.sh stop

fmt:
	$(CARGO) fmt --all

# cargo-machete finds dependencies no code uses (installed from crates.io on first use).
machete:
	command -v cargo-machete >/dev/null || $(CARGO) install --locked cargo-machete@0.9.2
	cargo machete

# cargo-deny: banned crates (a second TLS stack, deprecated ones), licences and sources
# (deny.toml). Advisories need GitHub, which CI cannot reach: `make deny-advisories`.
deny:
	command -v cargo-deny >/dev/null || $(CARGO) install --locked cargo-deny@0.19.0
	cargo deny --log-level error check bans licenses sources

deny-advisories:
	command -v cargo-deny >/dev/null || $(CARGO) install --locked cargo-deny@0.19.0
	cargo deny check advisories

lint: venv machete deny
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) scripts/check_schema.py
	$(PY) scripts/structure.py --self-test
	$(PY) scripts/structure.py

build:
	$(CARGO) build --workspace --bins --locked

# fmt check, clippy -D warnings, then every test (each integration-test binary
# starts its own moto server on a free port and stops it when it exits).
#
# Every integration test runs against moto behind the strict layer (tests/strict,
# docs/testing.md): IAM as template.yaml grants it, AWS's limits, DynamoDB contention.
# Its own tests run first; afterwards every grant must have been used by some request
# or say in the template why it is there (target/least-privilege.md, the table).
test: venv browser lint sam-validate build strict-test
	rm -rf target/strict-usage
	set -o pipefail; $(CARGO) test --workspace --all-targets --locked 2>&1 | tee target/test.log
	$(PY) tests/strict/least_privilege.py --usage target/strict-usage --out target/least-privilege.md --check
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log

# Debian's Chromium and its ChromeDriver: the console's browser tests drive them
# (tests/tests/console.rs). Installed here when missing (as root, from Debian's
# packages); otherwise `make test` stops and says how.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "the console's browser tests need Chromium and ChromeDriver: sudo apt-get install chromium chromium-driver" >&2; exit 1; \
	  fi; \
	fi

# The console's pictures in docs/console/ (docs/console.md), from its browser tests.
screenshots: venv browser build
	S3IMPORTS_SCREENSHOTS=$(CURDIR)/docs/console $(CARGO) test --locked -p s3imports-tests --test console

# The strict layer's own tests (boto3 against it, on a free loopback port).
strict-test: venv
	$(PY) -m unittest discover -s tests/strict -t tests

# The least-privilege table in docs/, from the last `make test`'s usage.
least-privilege: venv
	$(PY) tests/strict/least_privilege.py --usage target/strict-usage --out docs/least-privilege.md

release:
	$(CARGO) build --workspace --release --locked

# The whole import, end to end, against a local moto server: no AWS account needed.
demo: venv build
	scripts/demo.sh

# The demo, then the web console on its stack (until Ctrl-C).
console: venv build
	scripts/demo.sh --console

bench: venv
	scripts/bench.sh

# Fuzzing on stable Rust: FUZZ_ITERATIONS generated and mutated inputs for each parser
# (CSV, JSON, configs, mapping files, sniffing), in release. A panic fails it and leaves
# the input in target/fuzz-crash-<target>-<iteration>; `make test` runs 2,000 per target.
FUZZ_ITERATIONS ?= 1000000
fuzz:
	$(CARGO) run --release --locked -p s3imports-fuzz -- --target all --iterations $(FUZZ_ITERATIONS)

clean:
	$(CARGO) clean
	rm -rf $(VENV) .moto
