#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 60) each and prints a table of executions
# and coverage; exits non-zero when a target crashed, leaving the input under
# fuzz/artifacts/<target>/. `make fuzz` is the front door (it installs cargo-fuzz first).
#
#   FUZZ_SECONDS=300 fuzz/run.sh                 longer runs
#   FUZZ_TARGETS="origin invite_link" fuzz/run.sh   a subset
#   FUZZ_SANITIZER=none fuzz/run.sh              without AddressSanitizer
#   FUZZ_KEEP_GOING=1 fuzz/run.sh                go on after a crash (libFuzzer's fork mode),
#                                                collecting every failure, not only the first
#
# The corpus each run grows is kept under fuzz/generated/<target>/ (git-ignored), so the next
# run starts where this one stopped; the committed seeds (fuzz/corpus/) and crash reproducers
# (fuzz/regressions/) are read, never written; fuzz/dict/<target>.dict, if any, is passed to
# libFuzzer as its dictionary.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
FUZZ_TARGETS=${FUZZ_TARGETS:-signed_statement session_token migration_proof origin invite_link push_endpoint}
# Sanitizer builds kept apart from the ordinary ones.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mzchat/fuzz-target}
# cargo fuzz passes nightly-only flags (-Zsanitizer, sanitizer coverage); the pinned stable
# toolchain accepts them when told it is bootstrapping itself. No nightly toolchain needed.
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked (make fuzz does it)" >&2
    exit 1
fi

flags=(--sanitizer "$FUZZ_SANITIZER" --debug-assertions)
mode=()
[[ ${FUZZ_KEEP_GOING:-0} == 1 ]] && mode=(-fork=1 -ignore_crashes=1)
cargo fuzz build "${flags[@]}"

rows=()
crashed=()
for target in $FUZZ_TARGETS; do
    work=fuzz/generated/$target
    mkdir -p "$work" "fuzz/artifacts/$target"
    corpora=("$work" "fuzz/corpus/$target")
    [[ -d fuzz/regressions/$target ]] && corpora+=("fuzz/regressions/$target")
    dict=()
    [[ -f fuzz/dict/$target.dict ]] && dict=(-dict="fuzz/dict/$target.dict")
    log=fuzz/artifacts/$target.log
    echo "fuzzing $target for ${FUZZ_SECONDS}s"
    start=$SECONDS
    status=ok
    cargo fuzz run "${flags[@]}" "$target" "${corpora[@]}" -- -max_total_time="$FUZZ_SECONDS" \
        -print_final_stats=1 "${dict[@]}" "${mode[@]}" >"$log" 2>&1 || status=CRASH
    seconds=$((SECONDS - start))
    # libFuzzer's last status line: `#N<tab>DONE cov: X ft: Y ...` after a clean run,
    # `#N: cov: X ft: Y ... oom/timeout/crash: A/B/C ...` in fork mode.
    last=$(grep -E '^#[0-9]+:?[[:space:]].*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    failures=$(grep -oE 'crash: [0-9]+/[0-9]+/[0-9]+' <<<"$last" | tr -dc '0-9/\n' |
        awk -F/ '{ print $1 + $2 + $3 }' || true)
    [[ ${failures:-0} == 0 ]] || status=CRASH
    execs=$(grep -oE '^stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    [[ -n $execs ]] || execs=$(grep -oE '^#[0-9]+' <<<"$last" | tr -d '#' || true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    rows+=("$target|$status|${execs:--}|${cov:--}|${ft:--}|$seconds")
    if [[ $status != ok ]]; then
        crashed+=("$target")
        echo "--- $target crashed (whole log: $log):" >&2
        grep -m 1 -A 8 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$log" >&2 ||
            echo "(no trace in the log: replay an input from fuzz/artifacts/$target/ to see it)" >&2
        grep -E 'Test unit written to' "$log" >&2 || true
    fi
done

echo
printf '%-18s %-6s %12s %8s %8s %8s\n' target status executions cov ft seconds
for row in "${rows[@]}"; do
    IFS='|' read -r target status execs cov ft seconds <<<"$row"
    printf '%-18s %-6s %12s %8s %8s %8s\n' "$target" "$status" "$execs" "$cov" "$ft" "$seconds"
done

if ((${#crashed[@]})); then
    echo
    for target in "${crashed[@]}"; do
        input=$(grep -oE 'Test unit written to .*' "fuzz/artifacts/$target.log" |
            sed 's/Test unit written to //' || true)
        echo "$target crashed on ${input:-the inputs under fuzz/artifacts/$target/}" >&2
        echo "  replay: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $target <input>" >&2
    done
    exit 1
fi
