#!/usr/bin/env bash
# Runs every fuzz target for SECONDS_PER_TARGET (default 60), one after the other, each on
# its committed seeds (fuzz/seeds/<target>/, copied into the working corpus
# fuzz/corpus/<target>/, which is not committed), then prints target / executions / crashes
# and exits non-zero if any target crashed, hung or ran out of memory. Not part of CI.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]
#
# Environment:
#   FUZZ_TARGETS    space-separated targets to run (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER  address (default) or none; `none` runs about twice as fast
#   FUZZ_JOBS       parallel libFuzzer workers per target (default 1)
#
# cargo-fuzz drives rustc with nightly-only flags (-Zsanitizer=..., coverage passes); with
# only a stable toolchain installed, RUSTC_BOOTSTRAP=1 lets stable rustc and cargo accept
# them. Findings are written to fuzz/artifacts/<target>/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}
jobs=${FUZZ_JOBS:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

read -r -a targets <<<"${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"
echo "building ${#targets[@]} targets (sanitizer: $sanitizer)" >&2
cargo fuzz build --sanitizer "$sanitizer" >&2

mkdir -p logs
failed=0
rows=()
for target in "${targets[@]}"; do
    corpus=corpus/$target
    artifacts=artifacts/$target
    log=logs/$target.log
    mkdir -p "$corpus" "$artifacts"
    cp -n seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    before=$(find "$artifacts" -type f | wc -l)
    echo "running $target for $seconds s" >&2
    status=0
    # -timeout: one input taking longer is a hang (the slowest legitimate input, a key with
    # the most PBKDF2 iterations accepted, takes a few seconds); -rss_limit_mb: more memory
    # is a finding too.
    parallel=()
    if ((jobs > 1)); then
        parallel=(-jobs="$jobs" -workers="$jobs")
    fi
    cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 "${parallel[@]}" >"$log" 2>&1 || status=$?
    if ((jobs > 1)); then
        cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
    fi
    # libFuzzer's final statistics; the last "#N DONE" line if they are missing.
    executions=$(awk '/stat::number_of_executed_units:/ {n += $2} END {print n + 0}' "$log")
    if ((executions == 0)); then
        executions=$(grep -Eo '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | tr -dc '0-9')
        executions=${executions:-0}
    fi
    crashes=$(($(find "$artifacts" -type f | wc -l) - before))
    if ((status != 0 && crashes == 0)); then
        crashes=1 # libFuzzer stopped on a finding it could not write, or the build failed
    fi
    if ((crashes > 0)); then
        failed=1
        echo "$target: finding(s) in $artifacts, log in fuzz/$log" >&2
        grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY)' "$log" | head -5 >&2 || true
    fi
    rows+=("$target $executions $crashes")
done

printf '\n%-26s %14s %8s\n' target executions crashes
for row in "${rows[@]}"; do
    read -r target executions crashes <<<"$row"
    printf '%-26s %14s %8s\n' "$target" "$executions" "$crashes"
done
exit "$failed"
