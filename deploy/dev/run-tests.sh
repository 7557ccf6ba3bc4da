#!/usr/bin/env bash
# Runs the workspace's tests and ends with one total line ("tests: N passed, M failed") so the
# result reads the same whichever crate's tests happen to run last.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${CARGO:-cargo}" test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
