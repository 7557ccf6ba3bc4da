# Every routine task; CI calls the same targets (see .ci/run).
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(HOME)/.cache/mzchat/target
MZCHATD_FLAGS ?= --insecure-dev --data-dir ./data

.PHONY: run build test test-unit lint fmt proto bench test-faults services-up services-down clean image helm-lint crds crds-check fuzz

## Start a homeserver on http://127.0.0.1:7600 with embedded storage under ./data.
run:
	$(CARGO) run -p mzchatd -- all $(MZCHATD_FLAGS)

build:
	$(CARGO) build --workspace --all-targets

## Every test: unit tests and integration tests against the real PostgreSQL, NATS and S3 store
## (started by `make services-up` if they are down).
test: services-up
	CARGO=$(CARGO) deploy/dev/run-tests.sh

## Unit tests only (no services needed).
test-unit:
	$(CARGO) test --workspace --lib --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Benchmarks: release build, then the load scenarios against scratch homeservers (loopback),
## embedded (SQLite) and on PostgreSQL + NATS;
## writes docs/benchmarks.md (table), docs/benchmarks.svg (plot) and docs/benchmarks.jsonl.
BENCH_RESULTS ?= $(CURDIR)/docs/benchmarks.jsonl
bench: services-up
	$(CARGO) build --release -p mzchatd -p mzchat-loadtest
	rm -f $(BENCH_RESULTS)
	RESULTS=$(BENCH_RESULTS) loadtest/run.sh
	RESULTS=$(BENCH_RESULTS) BACKEND=postgres loadtest/run.sh
	RESULTS=$(BENCH_RESULTS) loadtest/federation.sh
	RESULTS=$(BENCH_RESULTS) loadtest/media.sh
	$(CARGO_TARGET_DIR)/release/mzchat-loadtest --json $(BENCH_RESULTS) --label "rate limiter" ratelimit
	python3 loadtest/report.py $(BENCH_RESULTS) docs/benchmarks.md

## Fault suite (deploy/faults/run.py): two split-mode homeservers over a PostgreSQL and a NATS of
## its own under a steady mixed load while NATS is killed, PostgreSQL restarted, replicas killed
## and the other homeserver cut off then slowed; fails when an acknowledged write was lost or
## duplicated, an event or federation job was not handled, or a process did not recover.
## Release build, then about 4 minutes; needs nats-server and PostgreSQL 15's initdb (services-up
## installs them).
test-faults: services-up
	CARGO=$(CARGO) python3 deploy/faults/run.py

## Regenerate proto/src/gen from the .proto files (no protoc needed).
proto:
	MZCHAT_PROTO_REGENERATE=1 $(CARGO) test -p mzchat-proto --test codegen

## Regenerate the Homeserver CRD from the operator's Rust types: deploy/crds and the copy the
## mzchat-operator chart installs.
CRD = deploy/crds/mzchat.io_homeservers.yaml
CHART_CRD = charts/mzchat-operator/crds/homeservers.yaml
crds:
	@mkdir -p $(dir $(CRD)) $(dir $(CHART_CRD))
	$(CARGO) run -q -p mzchat-operator -- crd > $(CRD).tmp
	mv $(CRD).tmp $(CRD)
	cp $(CRD) $(CHART_CRD)

## Fail when either committed CRD differs from what the Rust types generate.
crds-check:
	@tmp=$$(mktemp) && trap 'rm -f "$$tmp"' EXIT && \
	$(CARGO) run -q -p mzchat-operator -- crd > "$$tmp" && \
	for f in $(CRD) $(CHART_CRD); do \
		cmp -s "$$tmp" "$$f" || { echo "$$f is stale: run make crds" >&2; exit 1; }; \
	done

## Container image $(IMAGE):$(IMAGE_TAG) with mzchatd, mzchat and mzchat-operator, and its
## -debug variant (with a shell) that `helm test` uses; needs docker or podman with an engine.
IMAGE ?= ghcr.io/mzchat/mzchatd
IMAGE_TAG ?= dev
CONTAINER_ENGINE ?= $(shell command -v docker || command -v podman)
image:
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
		echo "make image: no container engine (install docker or podman, or set CONTAINER_ENGINE)" >&2; exit 1; fi
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { \
		echo "make image: $(CONTAINER_ENGINE) is installed but its engine is not running" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -t $(IMAGE):$(IMAGE_TAG) .
	$(CONTAINER_ENGINE) build --target debug -t $(IMAGE):$(IMAGE_TAG)-debug .

## Lint, render and validate both Helm charts and deploy/examples offline (charts/test.sh).
helm-lint:
	charts/test.sh

services-up:
	deploy/dev/services.sh up

services-down:
	deploy/dev/services.sh down

clean:
	rm -rf ./data

## Fuzz the parsers and verifiers that take network input (fuzz/: cargo fuzz with libFuzzer on
## the pinned stable toolchain), FUZZ_SECONDS per target; prints executions and coverage per
## target and fails when one crashed (its input under fuzz/artifacts/). Installs cargo-fuzz.
FUZZ_SECONDS ?= 60
FUZZ_TARGET_DIR ?= $(HOME)/.cache/mzchat/fuzz-target
fuzz:
	@command -v cargo-fuzz >/dev/null || CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) $(CARGO) install cargo-fuzz --locked
	CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh
