#!/usr/bin/env bash
# Runs the workspace's tests, then the offline Helm chart checks (charts/test.sh), and ends with
# one total line ("tests: N passed, M failed") so the result reads the same whichever crate's
# tests happen to run last.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${CARGO:-cargo}" test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
charts/test.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
awk '/^test result:/ { passed += $4; failed += $6 }
     /^charts: [0-9]+ passed/ { passed += $2; failed += $4 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
