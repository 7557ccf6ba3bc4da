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

## Benchmarks: release build, then the load scenarios against a scratch homeserver (loopback).
bench:
	$(CARGO) build --release -p mzchatd -p mzchat-loadtest
	loadtest/run.sh
	loadtest/federation.sh
	loadtest/media.sh

## Regenerate proto/src/gen from the .proto files (no protoc needed).
proto:
	MZCHAT_PROTO_REGENERATE=1 $(CARGO) test -p mzchat-proto --test codegen

services-up:
	deploy/dev/services.sh up

services-down:
	deploy/dev/services.sh down

clean:
	rm -rf ./data
