# Every routine task; CI calls the same targets (see .ci/run).
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(HOME)/.cache/mzchat/target
MZCHATD_FLAGS ?= --insecure-dev --data-dir ./data

.PHONY: run build test test-unit lint fmt proto bench services-up services-down clean

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
	python3 loadtest/report.py $(BENCH_RESULTS) docs/benchmarks.md

## Regenerate proto/src/gen from the .proto files (no protoc needed).
proto:
	MZCHAT_PROTO_REGENERATE=1 $(CARGO) test -p mzchat-proto --test codegen

services-up:
	deploy/dev/services.sh up

services-down:
	deploy/dev/services.sh down

clean:
	rm -rf ./data
